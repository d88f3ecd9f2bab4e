"""WORKDIR/metrics.jsonl: one JSON object per logging step, written by process 0."""

import json

import jax
from etils import epath


class JsonlWriter:
  """Appends rows to metrics.jsonl.

  Local files are appended to at once; object stores (gs://) cannot append,
  so there the file is rewritten whole at `flush()` (every checkpoint).
  """

  def __init__(self, path: epath.Path):
    self.path = path
    self.local = '://' not in str(path)
    self.rows = [] if self.local or not path.exists() else path.read_text().splitlines()

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
  """The rows of a metrics.jsonl; [] when there is none."""
  path = epath.Path(path)
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
