"""Before a run resumes its workdir: does the newest checkpoint hold this config's model?

Checked from the checkpoint's meta (JSON, no arrays) before any model is
built, with the same comparison --init_from uses (init_from.architecture_difference),
so that `--config.model.ch=8` on a ch 4 run's workdir is one line naming the
field and the override, not an Orbax traceback about shapes.
"""

from absl import logging
from etils import epath

from biggan_jax.checkpoints import init_from, run_checkpoints
from biggan_jax.checkpoints.errors import CheckpointError


def check(config, workdir) -> int | None:
  """Raises CheckpointError when WORKDIR's newest checkpoint holds another architecture.

  Model fields that do not change shapes (eps, init, dtype...) only get a
  warning: the run resumes with the config's values. Returns the step checked,
  or None for a new run.
  """
  found = run_checkpoints.newest_meta(epath.Path(workdir) / 'checkpoints')
  if found is None:
    return None
  step, meta = found
  if meta.get('kind') != run_checkpoints.TRAIN_KIND or not isinstance(meta.get('model'), dict):
    raise CheckpointError(f'--workdir={workdir}: its checkpoint {step} is not a biggan_jax '
                          'training checkpoint; give a new --workdir')
  difference = init_from.architecture_difference(config, meta['model'], True)
  if difference:
    raise CheckpointError(
        f'--workdir={workdir} resumes checkpoint {step}, whose model differs from the '
        f"config's {difference} (or train in a new --workdir)")
  ours = config.model.to_dict()
  other = {k: v for k, v in meta['model'].items() if k in ours and ours[k] != v}
  if other:
    logging.warning('resuming checkpoint %d with other model settings than it was saved '
                    'with: %s', step, ', '.join(f'model.{k} {v!r} -> {ours[k]!r}'
                                                for k, v in sorted(other.items())))
  return step
