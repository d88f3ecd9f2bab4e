"""Command line entry point: parse flags and the config, validate, dispatch.

    python -m biggan_jax.main --config=configs/tiny.py --workdir=runs/tiny --mode=summary

Every config field can be overridden on the command line, e.g.
`--config.model.ch=64 --config.batch_size=256`. A bad flag, config file or
config value stops the run before anything is built, with one line
`error: ...` on stderr and exit code 2. Kept short on purpose (like Flax's
examples/imagenet/main.py): the work lives in the modules `main` dispatches to.
"""

import glob
import logging
import re
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from biggan_jax import config as config_lib
from biggan_jax import input_pipeline

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a configs/*.py file; override fields with --config.<key>=<value>.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, samples and summaries.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'summary'],
                          'train: train the model; summary: count parameters, write summary.json.')
# Multi-host set-up for jax.distributed.initialize in train mode. Leave unset on
# one host and where JAX finds the cluster itself (Cloud TPU pods, SLURM).
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0, for jax.distributed.initialize.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes (hosts).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Index of this process.')
_INIT_FROM = flags.DEFINE_string(
    'init_from', None, 'Fine-tune: a new run starts G, EMA G and D from this converted '
    'checkpoint directory or training workdir (ignored when --workdir has a checkpoint).')
flags.mark_flags_as_required(['config', 'workdir'])

USAGE_ERROR = 2


def _fail(message: str) -> None:
  """Ends the run with `error: <message>` on one line of stderr, exit code 2."""
  print('error: ' + ' '.join(str(message).split()), file=sys.stderr)
  sys.exit(USAGE_ERROR)


def _last_line(error: BaseException) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[-1] if lines else type(error).__name__


def _flag_error_message(error: Exception, argv: list[str]) -> str:
  """Names the flag behind a parse error; ml_collections' own text is multi-line or bare."""
  if isinstance(error, flags.Error):  # one line per bad flag already.
    return str(error)
  for arg in argv:  # An override of a field the config does not have?
    path = arg.split('=', 1)[0][2:]
    if path.startswith('config.') and f"'{path.rsplit('.', 1)[1]}'" in str(error).replace('\\', ''):
      hint = re.search(r'Did you mean "([^"]+)"', str(error))
      return f'--{path}: no such config field' + (f'; did you mean {hint[1]!r}?' if hint else '')
  config_arg = next((a for a in argv if a.startswith('--config=')), '--config')
  return f'{config_arg}: {type(error).__name__}: {_last_line(error)}'


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with one-line errors instead of usage dumps and tracebacks."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except  # also what the config file raises.
    _fail(_flag_error_message(e, argv))


def _validated_config():
  config = _CONFIG.value
  try:
    config_lib.validate(config)
  except config_lib.ConfigError as e:
    _fail(e)
  except IOError as e:  # config_flags defers "file not found" until first use.
    _fail(f'--config={config_flags.get_config_filename(flags.FLAGS["config"])}: '
          f'{_last_line(e.__cause__ or e)}')
  return config


def _init_distributed() -> None:
  """jax.distributed.initialize: from the flags, or auto-detected on Cloud TPU."""
  import jax  # pylint: disable=g-import-not-at-top
  if _COORDINATOR_ADDRESS.value or _NUM_PROCESSES.value:
    if None in (_COORDINATOR_ADDRESS.value, _NUM_PROCESSES.value, _PROCESS_ID.value):
      _fail('--coordinator_address, --num_processes and --process_id go together; '
            'give all three (or none on Cloud TPU, where JAX finds them itself)')
    jax.distributed.initialize(_COORDINATOR_ADDRESS.value, _NUM_PROCESSES.value,
                               _PROCESS_ID.value)
  elif glob.glob('/dev/accel*') or glob.glob('/dev/vfio/[0-9]*'):
    jax.distributed.initialize()  # Cloud TPU VM: JAX reads the slice from metadata.


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  # JAX logs its failed probe for a TPU at INFO, which absl shows by default.
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
  if _MODE.value == 'train':
    _init_distributed()
  config = _validated_config()
  if _MODE.value == 'summary':
    from biggan_jax import summary  # pylint: disable=g-import-not-at-top  # JAX only for good configs.
    summary.summarize(config, _WORKDIR.value)
  else:
    from biggan_jax import init_from, train  # pylint: disable=g-import-not-at-top
    try:
      if _INIT_FROM.value:  # before anything is built; None when the workdir resumes.
        init_from.check(config, _INIT_FROM.value, _WORKDIR.value)
      train.train_and_evaluate(config, _WORKDIR.value, init_from=_INIT_FROM.value)
    except (train.NonFiniteLossError, input_pipeline.DatasetError,
            init_from.InitFromError) as e:
      _fail(e)


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
