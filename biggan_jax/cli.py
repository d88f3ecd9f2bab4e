"""What the command-line tools share: one-line errors, strict flag parsing, --verbosity.

Every biggan_jax CLI reports bad input as one line `error: ...` on stderr and
exit code 2 (USAGE_ERROR), never a traceback. Every CLI takes --verbosity:
stderr shows warnings and errors only by default (absl, Orbax and JAX log their
INFO notes through absl; TensorFlow's C++ through TF_CPP_MIN_LOG_LEVEL), and
--verbosity=info or debug brings those notes back.
"""

import glob
import importlib.metadata
import importlib.util
import logging as py_logging
import os
import sys
import threading

from absl import flags
from absl import logging

USAGE_ERROR = 2
VERBOSITY = ('error', 'warning', 'info', 'debug')  # absl's level names.
DEFAULT_VERBOSITY = 'warning'
COMMON_FLAGS = ('verbosity',)  # defined by flag_values() for every CLI.
# TensorFlow's C++ log level (0 all, 1 no INFO, 2 no WARNING) for each verbosity.
_TF_CPP_LEVEL = {'error': '2', 'warning': '1', 'info': '0', 'debug': '0'}


class UsageError(ValueError):
  """Bad flags or input files; the message is the one line the user sees."""


def flag_values() -> flags.FlagValues:
  """A CLI's own FlagValues (other CLIs' flags never collide), holding the flags
  every CLI takes: --verbosity."""
  flag_values = flags.FlagValues()
  flags.DEFINE_enum('verbosity', DEFAULT_VERBOSITY, VERBOSITY,
                    'Log messages on stderr: warning shows warnings and errors only; info or '
                    "debug adds absl's, Orbax's, JAX's and TensorFlow's notes.",
                    flag_values=flag_values)
  return flag_values


def set_verbosity(name: str) -> None:
  """absl's level, and TensorFlow's C++ one unless TF_CPP_MIN_LOG_LEVEL is set.

  gcsfs (gs://) logs each request that ran out of retries with its traceback, then
  raises: below info those go, and the CLI's one `error:` line says it.
  """
  logging.set_verbosity(name)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', _TF_CPP_LEVEL[name])
  verbose_enough = VERBOSITY.index(name) >= VERBOSITY.index('info')
  py_logging.getLogger('gcsfs').setLevel(py_logging.NOTSET if verbose_enough
                                         else py_logging.CRITICAL)


def verbose(flag_values: flags.FlagValues) -> bool:
  """--verbosity asks for INFO notes (then nothing is kept off stderr)."""
  return VERBOSITY.index(flag_values.verbosity) >= VERBOSITY.index('info')


def one_line(error: BaseException) -> str:
  return ' '.join(str(error).split()) or type(error).__name__


def parse(flag_values: flags.FlagValues, argv: list[str], describe=None) -> None:
  """Parses argv into `flag_values` and applies --verbosity; any problem is a UsageError.

  `describe(error, argv)`: the one line for any error parsing raises (a flag that
  loads a file, as --config does, can raise anything); without it only absl's
  flag errors are caught, whose text is one line already.
  """
  flag_values.unparse_flags()
  try:
    rest = flag_values(argv)
  except Exception as e:
    if describe is None and not isinstance(e, flags.Error):
      raise
    raise UsageError(describe(e, argv) if describe else e) from None
  if len(rest) > 1:
    raise UsageError(f'unexpected arguments: {" ".join(rest[1:])}')
  set_verbosity(flag_values.verbosity)


def check_output(path: str | None, overwrite: bool, suffixes: tuple[str, ...],
                 flag: str = 'output') -> None:
  """An output file the CLI may write (--`flag`): the right suffix, not a folder, not
  there unless --overwrite. Checked before any work, and again just before writing."""
  if path is None:
    return
  if not path.endswith(suffixes):
    raise UsageError(f'--{flag}={path}: must end in {" or ".join(suffixes)}')
  from etils import epath  # local paths and gs://
  if epath.Path(path).is_dir():
    raise UsageError(f'--{flag}={path} is a directory')
  if epath.Path(path).exists() and not overwrite:
    raise UsageError(f'--{flag}={path} exists; pass --overwrite to replace it')


def platforms_without_absent_tpu(dev: str = '/dev') -> str | None:
  """The JAX platforms to use when libtpu is installed (the [tpu] and [test]
  extras bring it, for --mode=compile) on a machine with no TPU: JAX would
  still start libtpu, which prints its start-up warnings on stderr. None when
  JAX_PLATFORMS is set, libtpu is absent, or a TPU is there (/dev/accel* on
  v2-v4 VMs, /dev/vfio/<n> from v5 on).
  """
  if os.environ.get('JAX_PLATFORMS') or importlib.util.find_spec('libtpu') is None:
    return None
  if glob.glob(os.path.join(dev, 'accel*')) or glob.glob(os.path.join(dev, 'vfio', '[0-9]*')):
    return None
  plugins = ' '.join(ep.name for ep in importlib.metadata.entry_points(group='jax_plugins'))
  # JAX skips 'cuda' itself where no NVIDIA GPU is visible; a listed platform whose
  # plugin is not installed would be an error, so only installed ones are named.
  return ','.join([p for p in ('cuda', 'rocm') if p in plugins] + ['cpu'])


def skip_absent_tpu() -> None:
  """Applies `platforms_without_absent_tpu` unless JAX has already started."""
  import jax
  from jax._src import xla_bridge  # no public "has JAX started" query.
  platforms = platforms_without_absent_tpu()
  if platforms and not xla_bridge.backends_are_initialized():
    jax.config.update('jax_platforms', platforms)


def run(doc: str, flag_values: flags.FlagValues, argv: list[str], body,
        errors=(ValueError,)) -> int:
  """A CLI's main: --help prints `doc`; `body()` parses (`parse`), runs and
  returns the line to print; any of `errors` becomes `error: <one line>`, exit 2.

  Logging is at the default verbosity until `parse` applies --verbosity, and
  back at the caller's afterwards (tests and notebooks keep theirs).
  """
  if any(a in ('--help', '-h', '--helpshort', '--helpfull') for a in argv[1:]):
    print(doc + '\n' + flag_values.get_help())
    return 0
  skip_absent_tpu()
  verbosity = logging.get_verbosity()
  tf_level = os.environ.get('TF_CPP_MIN_LOG_LEVEL')
  logging.set_verbosity(DEFAULT_VERBOSITY)
  try:
    message = body()
  except errors as e:
    print(f'error: {one_line(e)}', file=sys.stderr)
    return USAGE_ERROR
  finally:
    logging.set_verbosity(verbosity)
    if tf_level is None:  # what set_verbosity set; the caller's own value stays.
      os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None)
  if message:
    print(message)
  return 0


def exit(code: int):  # pylint: disable=redefined-builtin
  """sys.exit(code), except that a failing run does not wait for background threads.

  A checkpoint save that failed because storage went away (GCS unreachable) leaves
  Orbax's non-daemon threads waiting for signals that never come, and the interpreter
  would join them for Orbax's 300 s timeout after the `error:` line. The error is
  already printed and the lock released, so a non-zero exit ends the process now.
  """
  waiting = [t for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon and t.is_alive()]
  if code and waiting:
    logging.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pylint: disable=protected-access
  sys.exit(code)
