"""TF-Hub's original BigGAN modules (deepmind/biggan-128/256/512) -> biggan_jax.

    python -m biggan_jax.convert --source=tfhub --input=MODULE_DIR --output=DIR

The paper's own released generators: BigGAN (not -deep) at ch 96, hierarchical
z in equal chunks (6 x 20, 7 x 20, 8 x 16), a 128-d shared class embedding and
one self-attention block (after the 64x64, 128x128, 64x64 GBlock). Their
variable names and layouts are those BigGAN-PyTorch's TFHub/converter.py reads
(TFHub2Pytorch, convert_from_v1) and TFHub/biggan_v1.py runs:
- weights `<scope>/w/ema_b999900`, `<scope>/b/ema_b999900` (EMA copies; the raw
  ones and SN's second vector `u1` are ignored), SN vectors `<scope>/u0` (1, out);
- `linear/w` (num_classes, 128): the shared embedding, applied to a one-hot y;
- `Generator/G_Z/G_linear`: the first linear on z's first chunk, its outputs
  in NHWC order; `Generator/GBlock{,_1,...}/conv0, conv1, conv_sc` (HWIO);
- `GBlock*/HyperBN{,_1}/{gamma,beta}/w` (dz + 128, C): the conditional BN's
  SN linears on [z chunk, shared(y)] (z first; BigGAN-PyTorch and biggan_jax
  put the class first, so the columns are swapped); their statistics are
  `GBlock*/CrossReplicaBN{,_1}/accumulated_mean`, `accumulated_var`;
- `Generator/attention/{theta,phi,g,o_conv}/w`, `gamma`; the output BN
  `Generator/ScaledCrossReplicaBN/{gamma,beta}` with statistics under
  `Generator/ScaledCrossReplicaBNbn/`; the output conv `Generator/conv_2d`.

They are renamed to BigGAN-PyTorch's state dict (the converter's mapping) and
go through biggan_pytorch.to_variables, so both sources share one mapping.

BN statistics: one set per BN, not the deep modules' 51 per truncation. They
are used as stored, as BigGAN-PyTorch's converter and the other public ports
do (its README: the ported models run without truncation; standing statistics
at another truncation must be accumulated anew). What this rests on and could
not be checked without a real module is listed in docs/converting.md
("TF-Hub's original BigGAN modules"). The converted checkpoint samples in
the 'paper' convention, as BigGAN-PyTorch samples these weights; TF-Hub's own
colab draws z = τ · truncnorm(-2, 2), which `sample --z_file` reproduces.
"""

import re
from typing import Any

import numpy as np

from biggan_jax.convert import biggan_pytorch

ConversionError = biggan_pytorch.ConversionError
EMA = 'ema_b999900'
EPS = 1e-4  # BN and SN eps of the released modules (biggan_v1.py, converter.get_config).
OUTPUT_BN_EPS = {512: 1e-5}  # biggan_v1.py: nn.BatchNorm2d(ch) at 512, eps=1e-4 below.
ATTENTION = {128: 64, 256: 128, 512: 64}  # biggan_v1.py's sa_id; get_config's G_attn.
MODULES = {128: 'deepmind/biggan-128', 256: 'deepmind/biggan-256', 512: 'deepmind/biggan-512'}
_GBLOCK = re.compile(r'Generator/GBlock(?:_(\d+))?/')


def is_v1(tf_vars) -> bool:
  """Whether the variables are an original (non-deep) BigGAN module's."""
  return any(n.startswith('Generator/G_Z/G_linear/') for n in tf_vars) or any(
      '/HyperBN/' in n for n in tf_vars)


def _get(tf_vars, name: str) -> np.ndarray:
  if name not in tf_vars:
    raise ConversionError(f'variables/variables: no {name!r}; is this a TF-Hub BigGAN '
                          '(deepmind/biggan-128/256/512) module?')
  return np.asarray(tf_vars[name], np.float32)


def architecture(tf_vars) -> dict[str, Any]:
  """The module's shapes: blocks, ch, dim_z, the attention resolution (one line if odd)."""
  blocks = {int(m.group(1) or 0) for m in map(_GBLOCK.match, tf_vars) if m}
  n = len(blocks)
  if blocks != set(range(n)) or n < 2:
    raise ConversionError(f'variables/variables: GBlocks {sorted(blocks)}; a TF-Hub BigGAN '
                          'module has GBlock, GBlock_1, ... (5 / 6 / 7 at 128 / 256 / 512)')
  num_classes, shared_dim = _get(tf_vars, f'linear/w/{EMA}').shape
  dz, units = _get(tf_vars, f'Generator/G_Z/G_linear/w/{EMA}').shape
  hyper = _get(tf_vars, f'Generator/GBlock/HyperBN/gamma/w/{EMA}').shape
  if units % 256 or hyper[0] != dz + shared_dim:
    raise ConversionError(
        f'variables/variables: G_linear/w {(dz, units)}, HyperBN/gamma/w {hyper}: expected '
        f'(dz, 4 x 4 x 16 ch) and (dz + {shared_dim}, C)')
  resolution, ch = 4 * 2**n, units // 256
  attention = None
  if f'Generator/attention/theta/w/{EMA}' in tf_vars:
    from biggan_jax.models import architectures
    width = _get(tf_vars, f'Generator/attention/theta/w/{EMA}').shape[2]
    fits = [r for r, mult in architectures.G_ATTENTION_WIDTHS[resolution].items()
            if mult * ch == width]
    if ATTENTION.get(resolution) in fits:
      attention = ATTENTION[resolution]
    elif len(fits) == 1:
      attention = fits[0]
    else:
      raise ConversionError(f'variables/variables: Generator/attention has {width} channels, '
                            f'which fits G blocks at {fits} of a {resolution}x{resolution} '
                            f'BigGAN with ch {ch}; cannot place it')
  return dict(resolution=resolution, num_blocks=n, ch=ch, dim_z=dz * (n + 1), z_chunk=dz,
              shared_dim=shared_dim, num_classes=num_classes, attention=attention)


def _sigma(w: np.ndarray, u0: np.ndarray) -> np.ndarray:
  """σ of TF's inference power step from u0 (what upstream's sv0 would hold)."""
  w_mat = w.reshape(w.shape[0], -1).astype(np.float64)
  normalize = lambda x: x / max(np.linalg.norm(x), EPS)
  v = normalize(u0.reshape(-1) @ w_mat)
  u = normalize(w_mat @ v)
  return np.asarray([u @ w_mat @ v], np.float32)


def to_state_dict(tf_vars, arch: dict[str, Any]) -> dict[str, np.ndarray]:
  """TF-Hub BigGAN variables -> BigGAN-PyTorch's BigGAN.py G state dict (its names,
  OIHW convs, NCHW first linear, [y, z] BN columns), as its TFHub/converter.py maps them."""
  sd = {}
  get = lambda name: _get(tf_vars, name)

  def sn(scope, dst, conv, bias=True, permute=None):
    w = get(f'{scope}/w/{EMA}')
    w = w.transpose(3, 2, 0, 1) if conv else w.T  # torch's (out, in[, kh, kw])
    u0 = get(f'{scope}/u0').reshape(1, -1)
    if u0.shape[1] != w.shape[0]:
      raise ConversionError(f'variables/variables: {scope}/u0 has {u0.shape[1]} entries, '
                            f'its weight {w.shape[0]} outputs')
    sd[f'{dst}.sv0'] = _sigma(w, u0)
    if permute is not None:  # G_linear: NHWC outputs -> upstream's NCHW view.
      w, u0 = w[permute], u0[:, permute]
    sd[f'{dst}.weight'], sd[f'{dst}.u0'] = w, u0
    if bias:
      b = get(f'{scope}/b/{EMA}').reshape(-1)
      sd[f'{dst}.bias'] = b if permute is None else b[permute]

  def stats(scope, dst):
    sd[f'{dst}.stored_mean'] = get(f'{scope}/accumulated_mean').reshape(-1)
    sd[f'{dst}.stored_var'] = get(f'{scope}/accumulated_var').reshape(-1)

  c0, dz, s = 16 * arch['ch'], arch['z_chunk'], arch['shared_dim']
  sd['shared.weight'] = get(f'linear/w/{EMA}')
  nchw = np.arange(16 * c0).reshape(16, c0).T.reshape(-1)  # row c*16 + p <- p*C + c
  sn('Generator/G_Z/G_linear', 'linear', conv=False, permute=nchw)
  for i in range(arch['num_blocks']):
    scope, dst = f'Generator/GBlock_{i}' if i else 'Generator/GBlock', f'blocks.{i}.0'
    for theirs, ours in (('conv0', 'conv1'), ('conv1', 'conv2'), ('conv_sc', 'conv_sc')):
      sn(f'{scope}/{theirs}', f'{dst}.{ours}', conv=True)
    for k, hyper in ((1, 'HyperBN'), (2, 'HyperBN_1')):
      for theirs, ours in (('gamma', 'gain'), ('beta', 'bias')):
        sn(f'{scope}/{hyper}/{theirs}', f'{dst}.bn{k}.{ours}', conv=False, bias=False)
        w = sd[f'{dst}.bn{k}.{ours}.weight']  # (C, dz + 128): [z, y] -> [y, z]
        sd[f'{dst}.bn{k}.{ours}.weight'] = np.concatenate([w[:, dz:], w[:, :dz]], 1)
      stats(f'{scope}/{hyper.replace("HyperBN", "CrossReplicaBN")}', f'{dst}.bn{k}')
  if arch['attention'] is not None:
    from biggan_jax.models import biggan
    block = biggan.g_block_resolutions(arch['resolution']).index(arch['attention'])
    for theirs, ours in (('theta', 'theta'), ('phi', 'phi'), ('g', 'g'), ('o_conv', 'o')):
      sn(f'Generator/attention/{theirs}', f'blocks.{block}.1.{ours}', conv=True, bias=False)
    sd[f'blocks.{block}.1.gamma'] = get(f'Generator/attention/gamma/{EMA}').reshape(())
  sd['output_layer.0.gain'] = get(f'Generator/ScaledCrossReplicaBN/gamma/{EMA}').reshape(-1)
  sd['output_layer.0.bias'] = get(f'Generator/ScaledCrossReplicaBN/beta/{EMA}').reshape(-1)
  stats('Generator/ScaledCrossReplicaBNbn', 'output_layer.0')
  sn('Generator/conv_2d', 'output_layer.2', conv=True)
  return sd


def pytorch_config(arch: dict[str, Any]) -> dict[str, Any]:
  """BigGAN-PyTorch's constructor arguments for this module (its converter's get_config)."""
  return {'model': 'BigGAN', 'G_ch': arch['ch'], 'D_ch': arch['ch'], 'dim_z': arch['dim_z'],
          'shared_dim': arch['shared_dim'], 'hier': True, 'G_shared': True,
          'resolution': arch['resolution'], 'n_classes': arch['num_classes'],
          'G_attn': str(arch['attention'] or 0), 'D_attn': '0', 'BN_eps': EPS, 'SN_eps': EPS,
          'G_init': 'ortho'}


def counters(tf_vars) -> list[float]:
  """Every BN's accumulation_counter, recorded in meta (the statistics are used as stored)."""
  return sorted({float(np.asarray(v).reshape(-1)[0]) for n, v in tf_vars.items()
                 if n.endswith('/accumulation_counter')})


def convert(tf_vars, source: str) -> tuple[dict, dict, None]:
  """A v1 module's variables -> (meta, G variables, None)."""
  import jax.numpy as jnp
  from biggan_jax import models
  arch = architecture(tf_vars)
  cfg = pytorch_config(arch)
  m = biggan_pytorch.model_config_from_pytorch(cfg)
  m.output_bn_eps = OUTPUT_BN_EPS.get(arch['resolution'], EPS)
  sd = to_state_dict(tf_vars, arch)
  G = models.create_generator(m)
  expected = biggan_pytorch.expected_variables(
      G, jnp.zeros((1, m.dim_z), jnp.float32), jnp.zeros((1,), jnp.int32))
  try:
    variables = biggan_pytorch.to_variables(sd, expected, generator=True, model=m)
  except ConversionError as e:
    raise ConversionError(f'{source}: {e}') from None
  meta = {'source': 'tfhub', 'tfhub_module': MODULES.get(arch['resolution'], 'BigGAN'),
          'model': m.to_dict(), 'truncation_convention': 'paper',
          'bn_accumulation_counters': counters(tf_vars),
          'source_files': ['variables/variables']}
  return meta, variables, None
