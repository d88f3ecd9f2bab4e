"""pytorch-fid, the reference of the FID parity tests and benchmarks/fid.py.

Test-only: it edits sys.modules. pytorch-fid needs only torchvision's Python
model code; where torchvision's compiled ops do not load against the
installed torch (a CPU torch with PyPI's torchvision: "operator
torchvision::nms does not exist"), its package is imported without its
__init__.
"""

import importlib
import importlib.util
import os
import sys
import types


def import_pytorch_fid():
  """pytorch_fid.inception, or None when torch or pytorch-fid is not installed.

  pytorch-fid needs only torchvision's Python model code; where torchvision's
  compiled ops do not load against the installed torch (a CPU torch with
  PyPI's torchvision), its package is imported without its __init__.
  """
  if importlib.util.find_spec('torch') is None or importlib.util.find_spec('pytorch_fid') is None:
    return None
  try:
    import pytorch_fid.inception as fid_inception
    return fid_inception
  except (ImportError, RuntimeError):
    pass
  for name in [m for m in sys.modules if m.split('.')[0] in ('torchvision', 'pytorch_fid')]:
    del sys.modules[name]
  tv = types.ModuleType('torchvision')
  tv.__path__ = [os.path.dirname(importlib.util.find_spec('torchvision').origin)]
  tv.__version__ = '0.28.0'
  sys.modules['torchvision'] = tv
  import torchvision.models
  tv.models = torchvision.models
  import pytorch_fid.inception as fid_inception
  return fid_inception


def import_reference(module: str):
  """A reference implementation's module (e.g. 'torch_fidelity.metric_kid',
  'cleanfid.resize'), or None when it is not installed. clean-fid and
  torch-fidelity import torchvision at import time: it is loaded as above."""
  if importlib.util.find_spec(module.split('.')[0]) is None or import_pytorch_fid() is None:
    return None
  return importlib.import_module(module)
