"""The converted checkpoint directory: parameters beside the config that built them.

    DIR/meta.json        {'kind': 'biggan_jax.converted', 'source', 'model' (a
                         config.model dict), 'truncation_convention',
                         'has_discriminator', ...}
    DIR/generator/       G's variables (params, spectral, batch_stats), Orbax
    DIR/discriminator/   D's variables, when the source had a D (fine-tuning)

Orbax StandardSave, as the training checkpoints' 'ema_generator' item, so one
restore path (abstract target from `jax.eval_shape`, arrays onto a local
device) serves both kinds and a 512 model's 80M parameters are written and
read in parallel chunks; meta.json is plain JSON so that a reader sees the
architecture without JAX.

A directory is written under a temporary name and renamed into place, so a
failed conversion leaves no half-written checkpoint and an existing one is
replaced only after the new one is complete.
"""

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

from biggan_jax.checkpoints import errors
from biggan_jax.models import truncation
from biggan_jax.utils import storage

KIND = 'biggan_jax.converted'
META = 'meta.json'
GENERATOR = 'generator'
DISCRIMINATOR = 'discriminator'


class CheckpointDirError(errors.CheckpointError):
  """A converted checkpoint directory that cannot be written or read."""


def is_converted(directory) -> bool:
  """True when `directory` holds a meta.json of kind 'biggan_jax.converted'."""
  meta = epath.Path(directory) / META
  if not meta.is_file():
    return False
  try:
    return json.loads(meta.read_text()).get('kind') == KIND
  except (ValueError, AttributeError):
    return False


def check_writable(directory, overwrite: bool) -> None:
  """Raises unless `directory` may be (re)written; call before any work.

  With `overwrite`, only an empty directory or an earlier converted
  checkpoint is replaced, never an arbitrary folder.
  """
  directory = epath.Path(directory)
  if not directory.exists():
    return
  if not overwrite:
    raise CheckpointDirError(f'{directory} exists; pass --overwrite to replace it')
  if directory.is_dir() and (not any(directory.iterdir()) or is_converted(directory)):
    return
  raise CheckpointDirError(
      f'{directory} exists and is not a converted checkpoint directory; '
      'refusing to replace it even with --overwrite')


def _save_tree(path: epath.Path, tree) -> None:
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(path, tree)
  checkpointer.wait_until_finished()
  checkpointer.close()


def save(directory, meta: dict[str, Any], generator, discriminator=None, *,
         overwrite: bool = False) -> None:
  """Writes DIR (meta.json, generator/, [discriminator/]) atomically: on local disk
  through a temporary folder renamed into place; on an object store (gs://), which has no
  rename, in place with meta.json last, which read_meta requires (as Orbax writes
  commit_success.txt last), so an interrupted write is never read as a checkpoint."""
  directory = _path(directory)
  check_writable(directory, overwrite)
  meta = {**meta, 'kind': KIND, 'has_discriminator': discriminator is not None}
  if meta.get('truncation_convention') not in truncation.CONVENTIONS:
    raise CheckpointDirError(
        f"meta['truncation_convention'] must be one of {truncation.CONVENTIONS}")
  if storage.is_remote(directory):
    if directory.exists():  # check_writable allowed it: --overwrite.
      (directory / META).unlink(missing_ok=True)  # first: no longer a checkpoint
      directory.rmtree()
    _save_tree(directory / GENERATOR, generator)
    if discriminator is not None:
      _save_tree(directory / DISCRIMINATOR, discriminator)
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + '\n')
    return
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = directory.parent / f'.{directory.name}.tmp-{os.getpid()}'
  if tmp.exists():
    tmp.rmtree()
  try:
    tmp.mkdir()
    _save_tree(tmp / GENERATOR, generator)
    if discriminator is not None:
      _save_tree(tmp / DISCRIMINATOR, discriminator)
    (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + '\n')
    if directory.exists():  # check_writable allowed it: --overwrite.
      old = directory.parent / f'.{directory.name}.old-{os.getpid()}'
      directory.rename(old)
      tmp.rename(directory)
      old.rmtree()
    else:
      tmp.rename(directory)
  finally:
    if tmp.exists():
      tmp.rmtree()


def _path(directory) -> epath.Path:
  """Orbax wants absolute paths; a gs:// one already is (absolute() would prefix the cwd)."""
  path = epath.Path(directory)
  return path if storage.is_remote(path) else path.absolute()


def read_meta(directory) -> dict[str, Any]:
  directory = epath.Path(directory)
  try:
    meta = json.loads((directory / META).read_text())
  except (OSError, ValueError) as e:
    raise CheckpointDirError(f'{directory / META}: unreadable ({e})') from None
  if not isinstance(meta, dict) or meta.get('kind') != KIND or 'model' not in meta:
    raise CheckpointDirError(f'{directory / META}: not a converted checkpoint\'s meta')
  return meta


def restore(directory, item: str, abstract) -> Any:
  """Restores `item` ('generator' or 'discriminator') into `abstract`'s shapes.

  `abstract` is the module's `jax.eval_shape`d variables; the arrays land on
  the first local device.
  """
  path = _path(directory) / item
  if not path.is_dir():
    what = ('holds no generator (only a discriminator?)' if item == GENERATOR
            else 'holds no discriminator')
    raise CheckpointDirError(f'{directory}: {what}')
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device), abstract)
  checkpointer = ocp.StandardCheckpointer()
  try:
    return checkpointer.restore(path, target)
  except Exception as e:  # Orbax/tensorstore raise many kinds.
    problem = errors.describe_error(e)
  finally:
    checkpointer.close()
  errors.collect_failed_reads()
  raise CheckpointDirError(f'{path}: cannot restore it ({problem}); is the checkpoint '
                           'complete and written for this model config?')
