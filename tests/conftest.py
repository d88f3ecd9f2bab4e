"""Tests run on 8 simulated CPU devices so mesh code is exercised on CPU, and
share a JAX compilation cache ($TMPDIR/biggan_jax_tests_jax_cache).

tests/ mirrors the package (tests/models, tests/training, ...); its helper
modules (paths, cli_checks, damage, hf_fixture, inception_fixture, pytorch_fid_shim)
are importable by name from every test file.
"""

import os
import sys
import tempfile

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# One JAX compilation cache for the session, both xdist workers and the CLI
# subprocesses: dozens of tests compile the same tiny train step (3-5x faster
# warm on the 2-core CI machine). JAX keys entries by program, jax and flags.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'biggan_jax_tests_jax_cache'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
