"""Tests run on 8 simulated CPU devices so mesh code is exercised on CPU, and
share a JAX compilation cache ($TMPDIR/biggan_jax_tests_jax_cache).

tests/ mirrors the package (tests/models, tests/training, ...); its helper
modules (paths, cli_checks, damage, venvs and the *_fixture writers)
are importable by name from every test file.
"""

import ctypes
import gc
import os
import sys
import tempfile

import pytest

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# One JAX compilation cache for the session, both xdist workers and the CLI
# subprocesses: dozens of tests compile the same tiny train step (3-5x faster
# warm on the 2-core CI machine). JAX keys entries by program, jax and flags.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'biggan_jax_tests_jax_cache'))
# XLA's HLO passes all run (they are what could change a number); LLVM's machine-code
# optimisation does not: a third of each compile, for tiny models' slower steps.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope='module')
def _release_memory_after_each_module():
  """Each test module's compiled programs and freed heap go back after it: a worker's
  RSS stays that of its largest module (2.3 GB for test_loop.py, then 0.8) instead
  of growing past 6 GB over a worker's files."""
  yield
  import jax
  jax.clear_caches()
  gc.collect()
  ctypes.CDLL('libc.so.6').malloc_trim(0)  # glibc keeps freed pages otherwise


@pytest.fixture(scope='session')
def gcs(tmp_path_factory):
  """A GCS emulator for the session (tests/gcs_fixture.py), with only the standard
  emulator variables set; `gcs.bucket(name)` makes a bucket and returns gs://name."""
  import gcs_fixture
  emulator = gcs_fixture.Emulator(tmp_path_factory.mktemp('gcs')).start()
  with pytest.MonkeyPatch.context() as env:
    for name, value in emulator.env.items():
      env.setenv(name, value)
    yield emulator
  emulator.stop()
