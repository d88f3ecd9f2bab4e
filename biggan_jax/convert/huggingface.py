"""pytorch-pretrained-BigGAN (huggingface) BigGAN-deep -> biggan_jax variables.

    python -m biggan_jax.convert --source=huggingface --input=FOLDER --output=DIR

FOLDER holds config.json and pytorch_model.bin as the package ships them
(biggan-deep-128/256/512: ports of TF-Hub's BigGAN-deep). Conventions that
differ from BigGAN-PyTorch, all reproduced (read from the package's model.py and
convert_tf_to_pytorch.py):
- the conditioning vector is [z, embed(y)] (z first), embed a bias-free linear
  on one-hot classes (= a table lookup of its transposed weight);
- every BN holds `n_stats` (51) running means/vars, one per truncation
  0, 0.02, ..., 1, and picks them by the sampling truncation (see
  `models/truncation.py`'s bn_stats_at); BN and SN eps are both config.eps (1e-4);
- G's first linear reshapes to NHWC (TF order), as ours: no permutation;
- conv_to_rgb computes `ch` channels and keeps the first 3;
- spectral norm is torch.nn.utils.spectral_norm's: weight_orig, weight_u,
  weight_v. In eval mode it divides by sigma = u·W v with the stored u, v; we
  take one power step from a stored u, so the converter stores the u whose
  step gives exactly that v: the solution of Wᵀu = v (v lies in W's row
  space, having been made as normalize(Wᵀu0)). Outputs then equal the source
  model's in eval mode, which is also TF-Hub's own inference.
"""

import json
import math
import pathlib
from typing import Any, Mapping

import numpy as np

from biggan_jax.convert import biggan_pytorch
from biggan_jax.models import truncation

ConversionError = biggan_pytorch.ConversionError
CONFIG = 'config.json'
WEIGHTS = 'pytorch_model.bin'
STATS_COLLECTION = truncation.BN_STATS_BY_TRUNCATION
_CONFIG_KEYS = ('output_dim', 'z_dim', 'class_embed_dim', 'channel_width', 'num_classes',
                'layers', 'attention_layer_position', 'eps', 'n_stats')


# ---------------------------------------------------------------------------
# Architecture.
# ---------------------------------------------------------------------------

def expected_layers(resolution: int, depth: int = 2) -> list[tuple[bool, int, int]]:
  """config.json's `layers` ((upsample, in, out) multipliers) for our G tables."""
  from biggan_jax.models import biggan_deep
  ins, outs = biggan_deep.G_CHANNELS[resolution]
  out = []
  for i, o in zip(ins, outs):
    out += [(False, i, i)] * (depth - 1) + [(True, i, o)]
  return out


def model_config(cfg: Mapping[str, Any]):
  """A biggan_jax `config.model` for a pytorch-pretrained-BigGAN config.json."""
  from biggan_jax import config as config_lib
  from biggan_jax.models import biggan_deep
  missing = [k for k in _CONFIG_KEYS if k not in cfg]
  if missing:
    raise ConversionError(f'{CONFIG} lacks {missing}; is this a pytorch-pretrained-BigGAN '
                          'config?')
  resolution = int(cfg['output_dim'])
  if resolution not in biggan_deep.G_CHANNELS:
    raise ConversionError(f'{CONFIG}: output_dim={resolution} is not one of '
                          f'{sorted(biggan_deep.G_CHANNELS)}')
  layers = [tuple(l) for l in cfg['layers']]
  if layers != expected_layers(resolution):
    raise ConversionError(f'{CONFIG}: layers {layers} are not BigGAN-deep {resolution}\'s '
                          f'{expected_layers(resolution)}')
  if int(cfg['z_dim']) + int(cfg['class_embed_dim']) != 2 * int(cfg['z_dim']):
    raise ConversionError(f'{CONFIG}: the package needs class_embed_dim == z_dim '
                          f"(got {cfg['class_embed_dim']} and {cfg['z_dim']})")
  position = int(cfg['attention_layer_position'])
  if position % 2 or not 2 <= position <= len(layers):
    raise ConversionError(f'{CONFIG}: attention_layer_position={position} is not after '
                          'a stage')
  stage_res = 4 * 2 ** (position // 2)
  m = config_lib.base_config().model
  m.family = 'biggan_deep'
  m.resolution = resolution
  m.ch = int(cfg['channel_width'])
  m.dim_z = int(cfg['z_dim'])
  m.shared_dim = int(cfg['class_embed_dim'])
  m.num_classes = int(cfg['num_classes'])
  m.hierarchical_z = False
  m.g_depth = 2
  m.g_attn = str(stage_res)
  m.d_attn = ''
  m.bn_eps = m.output_bn_eps = m.sn_eps = float(cfg['eps'])
  m.output_conv_channels = m.ch
  return m


# ---------------------------------------------------------------------------
# The mapping.
# ---------------------------------------------------------------------------

def u_for(w_mat: np.ndarray, v: np.ndarray) -> np.ndarray:
  """The u (1, out) whose power step v = normalize(Wᵀu) gives `v` (see above).

  Least squares in float64: exact when v is in W's row space, as torch's
  stored weight_v is. Scaled to unit norm (the step normalises anyway).
  """
  w = np.asarray(w_mat, np.float64)
  u = np.linalg.lstsq(w.T, np.asarray(v, np.float64), rcond=None)[0]
  return (u / np.linalg.norm(u)).astype(np.float32)[None, :]


def _sn(flat: dict, need, src: str, dst: tuple[str, ...], conv: bool) -> None:
  """An SN weight `src` (weight_orig/_u/_v) -> params kernel and spectral u, sigma."""
  w, u_torch, v = (need(f'{src}.weight_{k}') for k in ('orig', 'u', 'v'))
  w_mat = w.reshape(w.shape[0], -1)
  if u_torch.shape != (w_mat.shape[0],) or v.shape != (w_mat.shape[1],):
    raise ConversionError(f'{WEIGHTS}: {src}.weight_u/_v have shapes {u_torch.shape}, '
                          f'{v.shape} for a weight of shape {w.shape}')
  flat[('params', *dst, 'kernel')] = w.transpose(2, 3, 1, 0) if conv else w.T
  flat[('spectral', *dst, 'sn', 'u')] = u_for(w_mat, v)
  sigma = u_torch.astype(np.float64) @ (w_mat.astype(np.float64) @ v.astype(np.float64))
  flat[('spectral', *dst, 'sn', 'sigma')] = np.float32(sigma).reshape(())


def to_variables(sd: Mapping[str, np.ndarray], m, n_stats: int) -> tuple[dict, dict]:
  """A state dict -> (G variables, the per-truncation BN stats table).

  The table has batch_stats' structure with (n_stats, C) leaves; the model's
  own batch_stats hold the τ = 1 row (sampling replaces them per τ).
  """
  from flax import traverse_util
  flat, table, used = {}, {}, set()
  sd = {k: np.asarray(v, np.float32) for k, v in sd.items()}

  def need(name):
    if name not in sd:
      raise ConversionError(f'{WEIGHTS}: no {name!r}; is this a BigGAN-deep checkpoint of '
                            'the config.json beside it?')
    used.add(name)
    return sd[name]

  def stats(src: str, dst: tuple[str, ...]):
    for ours, theirs in (('mean', 'running_means'), ('var', 'running_vars')):
      t = need(f'{src}.{theirs}')
      if t.ndim != 2 or t.shape[0] != n_stats:
        raise ConversionError(f'{WEIGHTS}: {src}.{theirs} has shape {t.shape}, expected '
                              f'({n_stats}, C) (n_stats in {CONFIG})')
      table[(*dst, 'stats', ours)] = t
      flat[('batch_stats', *dst, 'stats', ours)] = t[-1]

  flat[('params', 'shared', 'embedding')] = need('embeddings.weight').T
  _sn(flat, need, 'generator.gen_z', ('linear',), False)
  flat[('params', 'linear', 'bias')] = need('generator.gen_z.bias')

  from biggan_jax.models import biggan_deep
  stages = len(biggan_deep.G_CHANNELS[m.resolution][0])
  attn_stage = int(math.log2(int(m.g_attn) // 4)) - 1
  index = 0
  for stage in range(stages):
    for j in range(m.g_depth):
      src, dst = f'generator.layers.{index}', f'block{stage}_{j}'
      for k in range(4):
        bn = f'{src}.bn_{k}'
        _sn(flat, need, f'{bn}.scale', (dst, f'bn{k + 1}', 'gain'), False)
        _sn(flat, need, f'{bn}.offset', (dst, f'bn{k + 1}', 'bias'), False)
        stats(bn, (dst, f'bn{k + 1}'))
        _sn(flat, need, f'{src}.conv_{k}', (dst, f'conv{k + 1}'), True)
        flat[('params', dst, f'conv{k + 1}', 'bias')] = need(f'{src}.conv_{k}.bias')
      index += 1
    if stage == attn_stage:
      src, dst = f'generator.layers.{index}', f'attn{stage}'
      for theirs, ours in (('theta', 'theta'), ('phi', 'phi'), ('g', 'g'), ('o_conv', 'o')):
        _sn(flat, need, f'{src}.snconv1x1_{theirs}', (dst, ours), True)
      flat[('params', dst, 'gamma')] = need(f'{src}.gamma').reshape(())
      index += 1
  flat[('params', 'output_bn', 'gain')] = need('generator.bn.weight')
  flat[('params', 'output_bn', 'bias')] = need('generator.bn.bias')
  stats('generator.bn', ('output_bn',))
  _sn(flat, need, 'generator.conv_to_rgb', ('output_conv',), True)
  flat[('params', 'output_conv', 'bias')] = need('generator.conv_to_rgb.bias')

  unused = sorted(set(sd) - used)
  if unused:
    raise ConversionError(f'{WEIGHTS}: entries the config.json architecture does not have: '
                          f'{unused[:4]}')
  return traverse_util.unflatten_dict(flat), traverse_util.unflatten_dict(table)


def check_shapes(variables: dict, m) -> None:
  """Every leaf where the model wants it, with its shape (one-line error otherwise)."""
  import jax.numpy as jnp
  from flax import traverse_util
  from biggan_jax import models
  expected = biggan_pytorch.expected_variables(
      models.create_generator(m), jnp.zeros((1, m.dim_z)), jnp.zeros((1,), jnp.int32))
  biggan_pytorch.check_fits(traverse_util.flatten_dict(variables), expected,
                            expects='config.json implies')


# ---------------------------------------------------------------------------
# A folder.
# ---------------------------------------------------------------------------

def read_config(folder: pathlib.Path) -> dict[str, Any]:
  try:
    cfg = json.loads((folder / CONFIG).read_text())
  except (OSError, ValueError) as e:
    raise ConversionError(f'{folder / CONFIG}: unreadable ({type(e).__name__})') from None
  if not isinstance(cfg, dict):
    raise ConversionError(f'{folder / CONFIG}: not a JSON object')
  return cfg


def read_weights(path: pathlib.Path) -> dict[str, np.ndarray]:
  """pytorch_model.bin as float32 arrays, read without torch (formats/torch_pickle.py:
  no code from the file runs), so that pretrained models convert on an inference install."""
  from biggan_jax.formats import torch_pickle
  try:
    return {k: np.asarray(v, np.float32) for k, v in torch_pickle.read_state_dict(str(path)).items()}
  except ValueError as e:
    raise ConversionError(str(e)) from None


def convert_folder(folder) -> tuple[dict, dict, None]:
  """A pytorch-pretrained-BigGAN folder -> (meta, G variables incl. the table, None)."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ConversionError(f'--input={folder}: no such directory')
  names = {p.name for p in folder.iterdir()}
  if WEIGHTS not in names or CONFIG not in names:
    if any(n.endswith('.pth') for n in names):
      raise ConversionError(f'--input={folder} looks like a BigGAN-PyTorch weights folder '
                            '(.pth files): use --source=biggan-pytorch')
    other = biggan_pytorch.describe_other_format(folder, names)
    if other and 'huggingface' not in other:
      raise ConversionError(f'--input={folder} {other}, not a pytorch-pretrained-BigGAN '
                            'folder')
    raise ConversionError(f'--input={folder}: needs {CONFIG} and {WEIGHTS} as '
                          'pytorch-pretrained-BigGAN ships them')
  cfg = read_config(folder)
  m = model_config(cfg)
  sd = read_weights(folder / WEIGHTS)
  variables, table = to_variables(sd, m, int(cfg['n_stats']))
  check_shapes(variables, m)
  variables[STATS_COLLECTION] = table
  meta = {'source': 'huggingface', 'model': m.to_dict(), 'truncation_convention': 'tfhub',
          'class_names': 'imagenet',
          'num_bn_stats': int(cfg['n_stats']), 'source_files': [CONFIG, WEIGHTS]}
  return meta, variables, None
