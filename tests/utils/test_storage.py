"""gs:// routing (utils/storage.py) and appends (utils/files.py) against the GCS emulator."""

import os

from etils import epath

from biggan_jax.utils import files, storage


def test_gs_paths_go_through_gcsfs(gcs):
  """Not TensorFlow's client, which would call www.googleapis.com instead of the emulator."""
  assert os.environ['EPATH_USE_TF'] == 'false'
  path = epath.Path(gcs.bucket('routing')) / 'a' / 'b.txt'
  path.write_text('x')
  assert path.read_text() == 'x' and type(path._backend).__name__ == '_FileSystemSpecBackend'


def test_append_line_keeps_every_line_on_gcs(gcs):
  """gcsfs's 'a' mode overwrites; skipped.jsonl and collapse_guard.jsonl must not lose rows."""
  path = f"{gcs.bucket('appends')}/skipped.jsonl"
  for i in range(3):
    files.append_line(path, f'{{"n": {i}}}')
  assert epath.Path(path).read_text() == '{"n": 0}\n{"n": 1}\n{"n": 2}\n'


def test_conditional_writes(gcs):
  path = f"{gcs.bucket('leases')}/lock.json"
  generation = storage.write_if_generation(path, '{"a": 1}', 0)
  assert storage.read_versioned(path) == ('{"a": 1}', generation)
  try:
    storage.write_if_generation(path, '{"b": 2}', 0)
    raise AssertionError('a second create succeeded')
  except storage.PreconditionFailed:
    pass
  storage.delete_if_generation(path, generation)
  assert storage.read_versioned(path) == (None, 0)
