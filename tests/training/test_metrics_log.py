"""metrics.jsonl: torn lines skipped and counted, replayed steps dropped on resume."""

import json

from biggan_jax.training import metrics_log


def write_lines(path, *lines):
  path.write_text(''.join(line + '\n' for line in lines))


def test_torn_lines_are_skipped_and_counted(tmp_path, caplog):
  path = tmp_path / 'metrics.jsonl'
  write_lines(path, '{"step": 1, "g_loss": 0.5}', '{"step": 2, "g_lo', '[1, 2]',
              '{"step": 3, "g_loss": 0.25}')
  path.write_text(path.read_text() + '{"step": 4, "g_lo')  # killed mid-append: no newline
  rows = metrics_log.read_jsonl(path)
  assert rows == [{'step': 1, 'g_loss': 0.5}, {'step': 3, 'g_loss': 0.25}]
  assert any('skipped 3 torn or foreign lines' in r.getMessage() for r in caplog.records)
  assert metrics_log.read_jsonl(tmp_path / 'none.jsonl') == []


def test_a_resumed_run_drops_rows_past_its_step_and_torn_lines(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  write_lines(path, *(json.dumps({'step': s, 'g_loss': s / 10}) for s in (1, 2, 3, 4)))
  path.write_text(path.read_text() + '{"step": 5, "g_lo')
  writer = metrics_log.JsonlWriter(path, resume_step=2)  # checkpoint 2 restored
  writer.write(3, {'g_loss': 0.0})
  assert [r['step'] for r in metrics_log.read_jsonl(path)] == [1, 2, 3]
  assert path.read_text().count('\n') == 3
  assert not list(tmp_path.glob('.metrics.jsonl.tmp*'))  # rewritten through a temporary file


def test_nothing_is_rewritten_when_nothing_is_dropped(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  write_lines(path, '{"step": 1}', '{"step": 2}')
  before = path.stat().st_mtime_ns
  metrics_log.JsonlWriter(path, resume_step=2)
  assert path.stat().st_mtime_ns == before
