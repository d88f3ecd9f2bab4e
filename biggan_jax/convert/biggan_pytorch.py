"""BigGAN-PyTorch state dicts -> biggan_jax variables, and back to numbers.

The mapping is the one proof that biggan_jax *is* BigGAN: tests run the
author's tiny G and D (tests/data/biggan_pytorch_tiny64_f64.npz) through it
and match every output. Conventions handled here:
- conv weights (O, I, kh, kw) -> HWIO kernels; linear (O, I) -> (I, O);
- SN buffers u0 (1, O) -> 'spectral/.../sn/u', sv0 -> 'sigma';
- G's first linear reshapes to NCHW upstream and to NHWC here: its output
  units (and u0) are permuted from c*16 + p to p*C + c;
- module names: blocks.i.0 -> block{i}, blocks.i.1 -> attn{i},
  output_layer.0/.2 -> output_bn/output_conv, bnK.stored_* -> bnK/stats/*.

Inputs are name -> numpy array mappings, so nothing here needs torch.
"""

import re
from typing import Any, Mapping

import jax
import numpy as np
from flax import traverse_util


class ConversionError(ValueError):
  """A state dict that does not fit the model; the message names the entry."""


_RENAMES = (
    (r'^blocks\.(\d+)\.0\.', r'block\1.'),
    (r'^blocks\.(\d+)\.1\.', r'attn\1.'),
    (r'^output_layer\.0\.', 'output_bn.'),
    (r'^output_layer\.2\.', 'output_conv.'),
)


def _flax_entry(name: str) -> tuple[str, tuple[str, ...], str]:
  """Torch name -> (collection, flax path, kind of transform)."""
  for pattern, repl in _RENAMES:
    name = re.sub(pattern, repl, name)
  *mod, leaf = name.split('.')
  if leaf in ('stored_mean', 'stored_var'):
    return 'batch_stats', (*mod, 'stats', leaf[len('stored_'):]), 'copy'
  if leaf == 'u0':
    return 'spectral', (*mod, 'sn', 'u'), 'u'
  if leaf == 'sv0':
    return 'spectral', (*mod, 'sn', 'sigma'), 'sigma'
  if leaf == 'weight':
    if mod[-1] in ('shared', 'embed'):
      return 'params', (*mod, 'embedding'), 'copy'
    return 'params', (*mod, 'kernel'), 'weight'
  if leaf in ('bias', 'gain', 'gamma'):
    return 'params', (*mod, leaf), 'copy'
  raise ConversionError(f'unexpected entry {name!r} in a BigGAN-PyTorch state dict')


def _to_flax(kind: str, value: np.ndarray) -> np.ndarray:
  if kind == 'weight':
    return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
  if kind == 'sigma':
    return value.reshape(())
  return value


def _nchw_linear_to_nhwc(flat: dict, c0: int) -> None:
  """Permute G's first linear from NCHW (c*16+p) to NHWC (p*C+c) order."""
  perm = np.arange(16 * c0).reshape(c0, 16).T.reshape(-1)
  for key, axis in ((('params', 'linear', 'kernel'), 1),
                    (('params', 'linear', 'bias'), 0),
                    (('spectral', 'linear', 'sn', 'u'), 1)):
    if key in flat:
      flat[key] = np.take(flat[key], perm, axis=axis)


def to_variables(state_dict: Mapping[str, Any], expected: Mapping[str, Any],
                 *, generator: bool) -> dict:
  """Maps a BigGAN-PyTorch G or D state dict onto biggan_jax variables.

  Args:
    state_dict: name -> array (numpy or torch tensors already .numpy()'d).
    expected: the model's variables (or their jax.eval_shape) to fill; every
      leaf must be provided exactly once with the same shape.
    generator: True for G (permutes the first linear to NHWC).
  Returns:
    {'params', 'spectral'[, 'batch_stats']} with float32 numpy leaves.
  """
  flat = {}
  for name, value in state_dict.items():
    collection, path, kind = _flax_entry(name)
    flat[(collection, *path)] = _to_flax(kind, np.asarray(value, np.float32))
  want = traverse_util.flatten_dict(dict(expected))
  if generator and ('params', 'linear', 'kernel') in flat:
    # The checkpoint's own width: a mismatch is reported by the shape check below.
    _nchw_linear_to_nhwc(flat, flat[('params', 'linear', 'kernel')].shape[1] // 16)
  missing = sorted('/'.join(k) for k in want.keys() - flat.keys())
  unused = sorted('/'.join(k) for k in flat.keys() - want.keys())
  if missing or unused:
    raise ConversionError(
        f'state dict does not fit the model: missing {missing[:5]}, unexpected '
        f'{unused[:5]} (is the model config the one the checkpoint was trained with?)')
  for key, leaf in want.items():
    if tuple(flat[key].shape) != tuple(leaf.shape):
      raise ConversionError(
          f"{'/'.join(key)}: checkpoint shape {tuple(flat[key].shape)} but the "
          f'model expects {tuple(leaf.shape)} (check ch, dim_z, shared_dim, resolution)')
  return traverse_util.unflatten_dict(flat)


def model_config_from_pytorch(cfg: Mapping[str, Any]):
  """A biggan_jax `config.model` from BigGAN-PyTorch's constructor kwargs."""
  from biggan_jax import config as config_lib
  m = config_lib.base_config().model
  m.family = 'biggan'
  m.resolution = int(cfg['resolution'])
  m.num_classes = int(cfg['n_classes'])
  m.ch = int(cfg['G_ch'])
  m.d_ch = int(cfg.get('D_ch', cfg['G_ch']))
  m.dim_z = int(cfg['dim_z'])
  m.shared_dim = int(cfg.get('shared_dim') or cfg['dim_z'])
  m.hierarchical_z = bool(cfg.get('hier', False))
  m.g_attn = str(cfg.get('G_attn', '64'))
  m.d_attn = str(cfg.get('D_attn', '64'))
  m.bn_eps = float(cfg.get('BN_eps', 1e-5))
  m.sn_eps = float(cfg.get('SN_eps', 1e-12))
  m.init = {'ortho': 'ortho', 'N02': 'N02', 'glorot': 'xavier',
            'xavier': 'xavier'}[cfg.get('G_init', 'ortho')]
  return m


def expected_variables(module, *inputs) -> dict:
  """The variables `module` would have, as ShapeDtypeStructs (no allocation)."""
  return jax.eval_shape(
      lambda: module.init({'params': jax.random.key(0)}, *inputs, train=False))
