"""Writes each biggan_jax CLI's --help into docs/cli/<name>.txt.

    python docs/cli/regenerate.py          # from the repository root

The text is what `python -m biggan_jax.<name> --help` prints, captured in one process
(each CLI's own FlagValues, absl's 80-column help off a terminal), so it does not
depend on the terminal or on the path the module was run from. tests/test_docs.py
fails when a file here is out of date and names this command.
"""

import contextlib
import importlib
import io
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# name in docs/cli/ -> the module `python -m biggan_jax.<name>` runs.
CLIS = {
    'main': 'biggan_jax.main',
    'sample': 'biggan_jax.sample',
    'evaluate': 'biggan_jax.evaluate',
    'fid': 'biggan_jax.fid',
    'analysis': 'biggan_jax.analysis',
    'digits_eval': 'biggan_jax.digits_eval',
    'convert': 'biggan_jax.convert.__main__',
}


def help_text(module_name: str) -> tuple[int, str]:
  """(exit code, stdout) of the module's main([prog, '--help']), in this process."""
  module = importlib.import_module(module_name)
  # A --config=FILE parsed earlier in this process (a test) left its --config.<field>
  # override flags on the FlagValues; a fresh `--help` has none: set them aside meanwhile.
  flag_values = getattr(module, 'FLAGS', None)
  overrides = {n: flag_values[n] for n in list(flag_values) if n.startswith('config.')} \
      if flag_values is not None else {}
  for name in overrides:
    delattr(flag_values, name)
  out = io.StringIO()
  try:
    with contextlib.redirect_stdout(out):
      code = module.main([f'python -m {module_name.removesuffix(".__main__")}', '--help'])
  finally:
    for name, flag in overrides.items():
      flag_values[name] = flag
  return code, out.getvalue()


def path(name: str) -> str:
  return os.path.join(HERE, f'{name}.txt')


def main() -> int:
  sys.path.insert(0, REPO)
  for name, module_name in CLIS.items():
    code, text = help_text(module_name)
    if code != 0:
      print(f'error: {module_name} --help exited {code}', file=sys.stderr)
      return 1
    with open(path(name), 'w') as f:
      f.write(text)
    print(f'wrote {os.path.relpath(path(name), REPO)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
