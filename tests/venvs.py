"""A fresh venv that sees the packages of the environment running the tests.

`python -m venv --system-site-packages` sees the *base* interpreter's packages:
when the tests themselves run in a venv (the project installed with `.[test]`
into it, as most people run them), the new venv would miss everything that
venv holds. A .pth file in the new venv adds the running environment's
site-packages as site directories (their own .pth files processed, as the
system's are), after the new venv's own, so what is installed into the new
venv still comes first.
"""

import site
import subprocess
import sys
import sysconfig


def create(path, *, with_pip: bool = True) -> str:
  """Creates the venv at `path`; returns its python."""
  subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages',
                  *([] if with_pip else ['--without-pip']), str(path)], check=True)
  python = str(path / 'bin' / 'python')
  purelib = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                           check=True, capture_output=True, text=True).stdout.strip()
  ours = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_path('purelib')])]
  lines = ''.join(f'import site; site.addsitedir({p!r})\n' for p in ours)
  with open(f'{purelib}/biggan_jax_tests_parent_env.pth', 'w') as f:
    f.write(lines)
  return python
