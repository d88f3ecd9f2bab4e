"""What the CLI tests share: one line `error: ...` on stderr for bad input, and
`python -m biggan_jax.main` run in this process."""

import sys

import pytest


def one_error_line(capsys, *needles):
  """The captured stderr is one `error:` line containing every needle; returns it."""
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and err.startswith('error: '), err
  for needle in needles:
    assert needle in err, err
  return err


def run_main(*args) -> int:
  """`python -m biggan_jax.main ARGS` in this process; its exit code.

  ml_collections finds --config.<key> overrides in sys.argv, as a real command
  line has them, and defines each as a flag: the last call's are dropped so that
  they can be defined again.
  """
  from biggan_jax import main
  argv = ['main', *map(str, args)]
  for name in [n for n in main.FLAGS if n.startswith('config.')]:
    delattr(main.FLAGS, name)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(sys, 'argv', argv)
    return main.main(argv)
