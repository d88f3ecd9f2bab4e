"""Trains BigGAN, summarises a config's model, or compiles its step for a TPU slice.

    python -m biggan_jax.main --config=configs/tiny.py --workdir=runs/tiny [--mode=summary]
        [--dry_run] [--verbosity=info]
    python -m biggan_jax.main --config=configs/imagenet128.py --workdir=DIR \
      --mode=compile --topology=v4-8   # fits? est. speed; DIR/compile.json; pip install -e ".[tpu]"

Every config field can be overridden on the command line, e.g.
`--config.model.ch=64 --config.batch_size=256`. A bad flag, config file or
config value stops the run before anything is built, with one line
`error: ...` on stderr and exit code 2. --dry_run prints the resolved config,
the devices, the batch split and what the run would write, and creates
nothing; --verbosity=info adds absl's, Orbax's and TF's notes on stderr.
Kept short on purpose (like Flax's examples/imagenet/main.py): the work lives
in training/loop.py.
"""

import glob
import logging as py_logging
import re
import sys

from absl import flags
from absl import logging
from ml_collections import config_flags

from biggan_jax import cli, errors
from biggan_jax import config as config_lib

FLAGS = cli.flag_values()  # Its own, as every biggan_jax CLI's (cli.py).
config_flags.DEFINE_config_file(
    'config', None, 'Path to a configs/*.py file; override fields with --config.<key>=<value>.',
    flag_values=FLAGS)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, samples and summaries.',
                    flag_values=FLAGS)
flags.DEFINE_enum('mode', 'train', ['train', 'summary', 'compile'],
                  'train: train the model; summary: count parameters, write summary.json; '
                  'compile: compile the train step for --topology with libtpu, write '
                  'compile.json (memory, estimated step time).', flag_values=FLAGS)
flags.DEFINE_string('topology', None, 'For --mode=compile: a Cloud TPU slice (v4-8, v5litepod-8, '
                    'v3-32, ...) or libtpu topology (v4:2x2x1).', flag_values=FLAGS)
# Multi-host set-up for jax.distributed.initialize in train mode. Leave unset on
# one host and where JAX finds the cluster itself (Cloud TPU pods, SLURM).
flags.DEFINE_string('coordinator_address', None,
                    'host:port of process 0, for jax.distributed.initialize.', flag_values=FLAGS)
flags.DEFINE_integer('num_processes', None, 'Number of processes (hosts).', flag_values=FLAGS)
flags.DEFINE_integer('process_id', None, 'Index of this process.', flag_values=FLAGS)
flags.DEFINE_string(
    'init_from', None, 'Fine-tune: a new run starts G, EMA G and D from this converted '
    'checkpoint directory or training workdir (ignored when --workdir has a checkpoint).',
    flag_values=FLAGS)
flags.DEFINE_bool(
    'dry_run', False, 'Print the resolved config, the devices, the batch per device and what '
    'the run would write in --workdir, then exit 0 having created nothing (StyleGAN\'s '
    '--dry-run).', flag_values=FLAGS)
flags.mark_flags_as_required(['config', 'workdir'], flag_values=FLAGS)
flags.register_validator('workdir', lambda v: v is None or bool(v.strip()),
                         '--workdir is empty: give a directory (a local path or gs://BUCKET/DIR); '
                         'an empty one would write into the current directory', flag_values=FLAGS)


def _last_line(error: BaseException) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[-1] if lines else type(error).__name__


def _flag_error_message(error: Exception, argv: list[str]) -> str:
  """Names the flag behind a parse error; ml_collections' own text is multi-line or bare."""
  if isinstance(error, flags.Error):  # one line per bad flag already.
    return str(error)
  text = str(error).replace('\\', '')
  for arg in argv:  # An override of a field the config does not have (at any depth)?
    path = arg.split('=', 1)[0][2:]
    if not path.startswith('config.'):
      continue
    parts = path.split('.')[1:]
    for i, part in enumerate(parts):
      if f"'{part}'" in text:
        hint = re.search(r'Did you mean "([^"]+)"', text)
        field = '' if i == len(parts) - 1 else f" ('{part}')"
        return (f'--{path}: no such config field{field}'
                + (f'; did you mean {hint[1]!r}?' if hint else ''))
  config_arg = next((a for a in argv if a.startswith('--config=')), '--config')
  return f'{config_arg}: {type(error).__name__}: {_last_line(error)}'


def _validated_config(num_devices=None):
  try:
    config = FLAGS.config
    config_lib.validate(config, num_devices)
  except IOError as e:  # config_flags defers "file not found" until first use.
    raise cli.UsageError(f'--config={config_flags.get_config_filename(FLAGS["config"])}: '
                         f'{_last_line(e.__cause__ or e)}') from None
  return config


def _init_distributed() -> None:
  """jax.distributed.initialize: from the flags, or auto-detected on Cloud TPU."""
  import jax
  if FLAGS.coordinator_address or FLAGS.num_processes:
    if None in (FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id):
      raise cli.UsageError('--coordinator_address, --num_processes and --process_id go '
                           'together; give all three (or none on Cloud TPU, where JAX finds '
                           'them itself)')
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id)
  elif glob.glob('/dev/accel*') or glob.glob('/dev/vfio/[0-9]*'):
    jax.distributed.initialize()  # Cloud TPU VM: JAX reads the slice from metadata.


def run() -> str:
  """Validates, then summarises or trains as the parsed flags say."""
  if FLAGS.mode == 'compile':
    from biggan_jax.aot import report  # the slice's devices: the batch must split over them.
    from biggan_jax.training import compile_check
    if not FLAGS.topology:
      raise cli.UsageError('--mode=compile needs --topology, e.g. --topology=v4-8')
    _, devices = report.slice_devices(FLAGS.topology)
    compile_check.run(_validated_config(len(devices)), FLAGS.workdir, FLAGS.topology, devices)
    return ''
  if FLAGS.mode == 'train':
    _init_distributed()
  config = _validated_config()
  if FLAGS.mode == 'summary':
    if FLAGS.dry_run:
      raise cli.UsageError('--dry_run goes with --mode=train')
    from biggan_jax.models import summary  # JAX only for good configs.
    summary.summarize(config, FLAGS.workdir)
    return ''
  from biggan_jax.utils import extras
  extras.require_for_training(config)  # the [train] extra: one line if it is missing.
  from biggan_jax.checkpoints import init_from
  from biggan_jax.training import console, loop
  if FLAGS.init_from:  # before anything is built; None when the workdir resumes.
    init_from.check(config, FLAGS.init_from, FLAGS.workdir)
  if FLAGS.dry_run:
    return console.dry_run(config, FLAGS.workdir)
  loop.train_and_evaluate(config, FLAGS.workdir, init_from=FLAGS.init_from)
  return ''


def main(argv: list[str]) -> int:
  def body():
    cli.parse(FLAGS, argv, describe=_flag_error_message)  # also what the config file raises
    return run()
  flags.FLAGS.mark_as_parsed()  # absl logging without its "before flag parsing" note.
  logging.use_absl_handler()
  # JAX logs its failed probe for a TPU at INFO.
  py_logging.getLogger('jax._src.xla_bridge').setLevel(py_logging.WARNING)
  # ConfigError, DatasetError, InitFromError, EvaluationError; NonFiniteLossError.
  return cli.run(__doc__, FLAGS, argv, body, errors=(ValueError, errors.TrainingError))


if __name__ == '__main__':
  cli.exit(main(sys.argv))
