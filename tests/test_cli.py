"""cli.py: --verbosity, the convention every CLI shares."""

from absl import flags
from absl import logging
import pytest

from biggan_jax import cli
from cli_checks import one_error_line


def _tool():
  """A CLI as cli.run runs it; records the absl level its body ran at."""
  values, seen = cli.flag_values(), []

  def body(argv):
    cli.parse(values, argv)
    seen.append(logging.get_verbosity())
    return ''
  return values, seen, body


@pytest.mark.parametrize('args,level', [([], logging.WARNING), (['--verbosity=info'], logging.INFO),
                                        (['--verbosity=debug'], logging.DEBUG)])
def test_verbosity_sets_absl_level_while_the_tool_runs(args, level):
  values, seen, body = _tool()
  before = logging.get_verbosity()
  assert cli.run('doc', values, ['tool', *args], lambda: body(['tool', *args])) == 0
  assert seen == [level]
  assert logging.get_verbosity() == before  # the caller's own level comes back


def test_bad_verbosity_is_one_line(capsys):
  values, _, body = _tool()
  argv = ['tool', '--verbosity=loud']
  assert cli.run('doc', values, argv, lambda: body(argv)) == cli.USAGE_ERROR
  one_error_line(capsys, '--verbosity', 'loud')


def test_every_cli_takes_verbosity():
  from biggan_jax import analysis, digits_eval, evaluate, fid, main, sample
  from biggan_jax.convert import __main__ as convert
  for module in (analysis, convert, digits_eval, evaluate, fid, main, sample):
    assert isinstance(module.FLAGS['verbosity'], flags.Flag), module.__name__
