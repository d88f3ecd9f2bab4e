"""Tests run on 8 simulated CPU devices so mesh code is exercised on CPU.

tests/ mirrors the package (tests/models, tests/training, ...); its helper
modules (paths, cli_checks, hf_fixture, inception_fixture, pytorch_fid_shim)
are importable by name from every test file.
"""

import os
import sys

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
