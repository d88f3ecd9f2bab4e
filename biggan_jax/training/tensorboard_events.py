"""TensorBoard events of a run: written by clu's writer, uploaded whole for a gs:// workdir.

clu writes through tf.summary, whose file system is TensorFlow's own GCS client:
it has no endpoint setting (it always calls www.googleapis.com, not an emulator
or a proxy) and is the one gs:// client biggan_jax would otherwise not choose
(utils/storage.py). For a gs:// workdir the events go to a local folder and
`sync()` copies its files to the workdir with the other writes, at every
checkpoint and at the end, as metrics.jsonl is rewritten; a kill loses the
events since the last checkpoint, which the resumed run logs again.
"""

import shutil
import tempfile

import jax
from etils import epath

from biggan_jax.utils import storage


class Events:
  def __init__(self, workdir):
    from clu import metric_writers
    self.workdir = epath.Path(workdir)
    self.local = tempfile.mkdtemp(prefix='biggan_jax_events_') if storage.is_remote(
        workdir) else None
    self.writer = metric_writers.create_default_writer(
        self.local or str(workdir), just_logging=jax.process_index() > 0)

  def write_scalars(self, step: int, scalars: dict) -> None:
    self.writer.write_scalars(step, scalars)

  def sync(self) -> None:
    """Flushes the events; for gs://, copies each event file whole to the workdir."""
    self.writer.flush()
    if self.local is None or jax.process_index() > 0:
      return
    for path in epath.Path(self.local).iterdir():
      (self.workdir / path.name).write_bytes(path.read_bytes())

  def close(self) -> None:
    self.sync()
    self.writer.close()
    if self.local is not None:
      shutil.rmtree(self.local, ignore_errors=True)
