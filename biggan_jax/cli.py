"""What the command-line tools share: one-line errors and strict flag parsing.

Every biggan_jax CLI reports bad input as one line `error: ...` on stderr and
exit code 2 (USAGE_ERROR), never a traceback.
"""

from absl import flags

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
