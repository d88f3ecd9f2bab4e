"""The package's layers (setup.cfg's [importlinter] contract) hold: no module imports one
from a layer above it, function-level imports included.

import-linter runs in its own process: its console keeps the sys.stdout it first
met, which pytest's capture closes under it.
"""

import subprocess
import sys

from paths import REPO


def test_no_module_imports_a_layer_above_its_own():
  result = subprocess.run(
      [sys.executable, '-c', 'from importlinter.cli import lint_imports_command as c; c()',
       '--config', str(REPO / 'setup.cfg'), '--no-cache'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout[result.stdout.find('Broken contracts'):]
  assert 'Contracts: 1 kept, 0 broken.' in result.stdout
