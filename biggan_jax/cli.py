"""What the command-line tools share: one-line errors and strict flag parsing.

Every biggan_jax CLI reports bad input as one line `error: ...` on stderr and
exit code 2 (USAGE_ERROR), never a traceback.
"""

import os
import sys

from absl import flags
from absl import logging

USAGE_ERROR = 2


class UsageError(ValueError):
  """Bad flags or input files; the message is the one line the user sees."""


def one_line(error: BaseException) -> str:
  return ' '.join(str(error).split()) or type(error).__name__


def parse(flag_values: flags.FlagValues, argv: list[str]) -> None:
  """Parses argv into `flag_values`; any problem is a UsageError."""
  flag_values.unparse_flags()
  try:
    rest = flag_values(argv)
  except flags.Error as e:
    raise UsageError(e) from None
  if len(rest) > 1:
    raise UsageError(f'unexpected arguments: {" ".join(rest[1:])}')


def check_output(path: str | None, overwrite: bool, suffixes: tuple[str, ...]) -> None:
  """An output file the CLI may write: the right suffix, not a folder, not there
  unless --overwrite. Checked before any work, and again just before writing."""
  if path is None:
    return
  if not path.endswith(suffixes):
    raise UsageError(f'--output={path}: must end in {" or ".join(suffixes)}')
  if os.path.isdir(path):
    raise UsageError(f'--output={path} is a directory')
  if os.path.exists(path) and not overwrite:
    raise UsageError(f'--output={path} exists; pass --overwrite to replace it')


def run(doc: str, flag_values: flags.FlagValues, argv: list[str], body,
        errors=(ValueError,), quiet: bool = True) -> int:
  """A CLI's main: --help prints `doc`; `body()` runs after parsing and
  returns the line to print; any of `errors` becomes `error: <one line>`, exit 2.

  `quiet`: absl logging at ERROR only while `body` runs (Orbax's notes on
  read-only managers etc. are noise for a one-shot tool).
  """
  if any(a in ('--help', '-h', '--helpshort', '--helpfull') for a in argv[1:]):
    print(doc + '\n' + flag_values.get_help())
    return 0
  verbosity = logging.get_verbosity()
  if quiet:
    logging.set_verbosity(logging.ERROR)
  try:
    message = body()
  except errors as e:
    print(f'error: {one_line(e)}', file=sys.stderr)
    return USAGE_ERROR
  finally:  # in-process callers (tests, notebooks) keep their own verbosity.
    logging.set_verbosity(verbosity)
  if message:
    print(message)
  return 0
