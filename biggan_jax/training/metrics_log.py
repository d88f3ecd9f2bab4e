"""WORKDIR/metrics.jsonl: one JSON object per logging step, written by process 0.

A run killed during an append (or on a full disk) leaves a torn last line,
and a resumed run replays the steps after its checkpoint: readers skip torn
lines (and say how many), and a resumed run first drops the rows past the
step it restored, so every step appears once.
"""

import json

import jax
from absl import logging
from etils import epath

from biggan_jax.utils import files


def _parse(lines) -> tuple[list[dict], int]:
  """(rows, number of lines that are not a JSON object)."""
  rows, torn = [], 0
  for line in lines:
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except ValueError:
      torn += 1
      continue
    if isinstance(row, dict) and isinstance(row.get('step'), int):
      rows.append(row)
    else:
      torn += 1
  return rows, torn


class JsonlWriter:
  """Appends rows to metrics.jsonl.

  Local files are appended to at once; object stores (gs://) cannot append,
  so there the file is rewritten whole at `flush()` (every checkpoint).
  `resume_step`: the step the run restored; later rows and torn lines are
  dropped first (the file is rewritten atomically).
  """

  def __init__(self, path: epath.Path, resume_step: int | None = None):
    self.path = path
    self.local = '://' not in str(path)
    self.rows = [] if self.local or not path.exists() else path.read_text().splitlines()
    if resume_step is not None:
      self.truncate(resume_step)

  def truncate(self, step: int) -> None:
    """Drops the rows after `step` and any torn line (a resume or a rollback to `step`)."""
    if jax.process_index() != 0 or not self.path.exists():
      return
    lines = self.path.read_text().splitlines() if self.local else self.rows
    rows, torn = _parse(lines)
    kept = [json.dumps(r) for r in rows if r['step'] <= step]
    if torn or len(kept) < len(rows):
      logging.warning('%s: dropped %d rows after step %d and %d torn lines', self.path,
                      len(rows) - len(kept), step, torn)
      if self.local:
        files.write_text(self.path, ''.join(line + '\n' for line in kept))
      else:
        self.rows = kept

  def write(self, step, scalars):
    if jax.process_index() != 0:
      return
    line = json.dumps({'step': int(step), **scalars})
    if self.local:
      with self.path.open('a') as f:
        f.write(line + '\n')
    else:
      self.rows.append(line)

  def flush(self):
    if jax.process_index() == 0 and not self.local:
      self.path.write_text('\n'.join(self.rows) + '\n')


def read_jsonl(path) -> list[dict]:
  """The rows of a metrics.jsonl; [] when there is none. Torn lines are skipped (and counted)."""
  path = epath.Path(path)
  if not path.exists():
    return []
  rows, torn = _parse(path.read_text().splitlines())
  if torn:
    logging.warning('%s: skipped %d torn or foreign lines', path, torn)
  return rows
