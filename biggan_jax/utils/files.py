"""Writing a file so that a failure (kill, full disk) never leaves half of it."""

import contextlib
import json
import os

from etils import epath


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside `path`; renamed onto `path` when the block ends.

  A block that raises leaves `path` as it was and removes the temporary file.
  Object stores (gs://) write whole objects anyway, so there `path` itself is
  yielded.
  """
  if '://' in str(path):
    yield epath.Path(path)
    return
  path = os.path.abspath(os.fspath(path))
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f'.{os.path.basename(path)}.tmp-{os.getpid()}')
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path, text: str) -> None:
  """`path`.write_text(text), atomically."""
  with atomic_path(path) as tmp:
    epath.Path(tmp).write_text(text)


def write_json(path, document) -> None:
  """`document` as indented JSON at `path`, atomically: a failed write leaves the old file."""
  write_text(path, json.dumps(document, indent=2) + '\n')


def append_line(path, line: str) -> None:
  """Appends `line` and a newline to `path`. GCS cannot append (gcsfs's 'a' mode silently
  overwrites), so there the object is read and written back whole: a failure leaves the
  old object, and one writer (process 0) at a time is assumed."""
  path = epath.Path(path)
  if '://' not in str(path):
    with path.open('a') as f:
      f.write(line + '\n')
    return
  old = path.read_text() if path.exists() else ''
  path.write_text(old + line + '\n')
