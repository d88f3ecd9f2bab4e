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

Weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, read without
torch by a restricted unpickler (`read_pth`), so TPU VMs need no torch.
Module names are the state dict's, so the mapping is mechanical.
"""

import collections
import functools
import hashlib
import io
import os
import pickle
import struct
import urllib.request
import zipfile
from typing import Any, Iterator, Mapping

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

FID_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                   'pt_inception-2015-12-05-6726825d.pth')
WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'
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
  features match the reference's to ~1e-5.
  """
  precision: Any = 'highest'

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
# Weights: pytorch-fid's .pth without torch.
# ---------------------------------------------------------------------------

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch.serialization.MAGIC_NUMBER


class _StorageType:
  """Stands in for torch.FloatStorage etc.: only its dtype matters."""

  def __init__(self, dtype):
    self.dtype = np.dtype(dtype)


class _LazyTensor:
  """A tensor whose storage bytes come later (after the pickle, in the legacy format)."""

  def __init__(self, storage, offset, size, stride, *unused):
    del unused  # requires_grad, backward_hooks, metadata
    self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

  def materialize(self, storages: Mapping[str, np.ndarray]) -> np.ndarray:
    dtype, key = self.storage
    flat = storages[key]
    if 0 in self.size:
      return np.zeros(self.size, dtype)
    if not self.size:
      return flat[self.offset].copy()
    if self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) >= len(flat):
      raise ValueError(f'a tensor of shape {self.size} reaches past its storage')
    view = np.lib.stride_tricks.as_strided(
        flat[self.offset:], self.size, [s * dtype.itemsize for s in self.stride])
    return np.array(view)


def _rebuild_parameter(tensor, *unused):
  del unused
  return tensor


class _TensorUnpickler(pickle.Unpickler):
  """Unpickles a state dict: containers, tensors and storages, nothing else.

  Unlike torch.load(weights_only=False), no class or function the file names
  runs: tensors become `_LazyTensor`s and storages (dtype, key) pairs.
  """
  _SAFE = {('collections', 'OrderedDict'): collections.OrderedDict,
           ('torch._utils', '_rebuild_tensor_v2'): _LazyTensor,
           ('torch._utils', '_rebuild_parameter'): _rebuild_parameter}

  def __init__(self, file, storage_sizes: dict):
    super().__init__(file)
    self.storage_sizes = storage_sizes

  def find_class(self, module, name):
    if (module, name) in self._SAFE:
      return self._SAFE[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(_STORAGE_DTYPES[name])
    raise pickle.UnpicklingError(f'{module}.{name} is not allowed in a weights file')

  def persistent_load(self, pid):
    # ('storage', type, key, location, numel[, view_metadata (legacy format)])
    if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != 'storage'
        or not isinstance(pid[1], _StorageType) or (len(pid) > 5 and pid[5] is not None)):
      raise pickle.UnpicklingError(f'unsupported persistent id {str(pid)[:80]}')
    key = str(pid[2])
    self.storage_sizes[key] = (pid[1].dtype, int(pid[4]))
    return pid[1].dtype, key


def _unpickle(file, storage_sizes):
  return _TensorUnpickler(file, storage_sizes).load()


def _read_zip(path: str) -> tuple[Any, dict[str, np.ndarray]]:
  """torch.save's zip format (torch >= 1.6): <root>/data.pkl + <root>/data/<key>."""
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pkl = next((n for n in names if n.endswith('data.pkl') and n.count('/') == 1), None)
    if pkl is None:
      raise ValueError('no <root>/data.pkl in the archive')
    root = pkl[:-len('data.pkl')]
    byteorder = (archive.read(root + 'byteorder').decode().strip()
                 if root + 'byteorder' in names else 'little')
    sizes = {}
    obj = _unpickle(io.BytesIO(archive.read(pkl)), sizes)
    storages = {}
    for key, (dtype, numel) in sizes.items():
      dtype = dtype.newbyteorder('<' if byteorder == 'little' else '>')
      data = archive.read(f'{root}data/{key}')
      if len(data) != numel * dtype.itemsize:
        raise ValueError(f'storage {key} holds {len(data)} bytes, expected '
                         f'{numel * dtype.itemsize}')
      storages[key] = np.frombuffer(data, dtype).astype(dtype.newbyteorder('='))
  return obj, storages


class _PlainUnpickler(pickle.Unpickler):
  def find_class(self, module, name):
    raise pickle.UnpicklingError(f'{module}.{name} is not allowed here')


def _plain_load(file):
  """One pickle of plain data (ints, strings, lists, dicts)."""
  return _PlainUnpickler(file).load()


def _read_legacy(path: str) -> tuple[Any, dict[str, np.ndarray]]:
  """torch.save's legacy format (torch < 1.6, e.g. pytorch-fid's 2019 weights).

  Pickles: magic, protocol, sys info, the object, its storage keys; then per
  key an int64 element count and the raw little-endian elements.
  """
  with open(path, 'rb') as f:
    if _plain_load(f) != _LEGACY_MAGIC:
      raise ValueError('not a torch.save file')
    _plain_load(f)  # protocol version
    sys_info = _plain_load(f)
    if not isinstance(sys_info, dict) or not sys_info.get('little_endian', True):
      raise ValueError('big-endian legacy files are not supported')
    sizes = {}
    obj = _unpickle(f, sizes)
    keys = _plain_load(f)
    storages = {}
    for key in keys:
      dtype, numel = sizes[str(key)]
      header = f.read(8)
      if len(header) < 8 or struct.unpack('<q', header)[0] != numel:
        raise ValueError(f'storage {key}: bad size header')
      data = f.read(numel * dtype.itemsize)
      if len(data) != numel * dtype.itemsize:
        raise ValueError(f'storage {key} is truncated')
      storages[str(key)] = np.frombuffer(data, dtype.newbyteorder('<')).astype(dtype)
  return obj, storages


def read_pth(path: str) -> dict[str, np.ndarray]:
  """A torch.save'd state dict (zip or legacy format) -> name -> numpy array, no torch.

  Raises ValueError (one line naming the file) for anything else: a missing,
  truncated or foreign file, or a pickle that names other classes.
  """
  try:
    obj, storages = (_read_zip if zipfile.is_zipfile(path) else _read_legacy)(path)
    if not isinstance(obj, Mapping) or not obj:
      raise ValueError('not a state dict (name -> tensor)')
    out = {}
    for name, value in obj.items():
      if not isinstance(value, _LazyTensor):
        raise ValueError(f'entry {name!r} is a {type(value).__name__}, not a tensor')
      out[str(name)] = value.materialize(storages)
    return out
  except Exception as e:  # pylint: disable=broad-except  # any malformed file.
    detail = ' '.join(str(e).split())[:200]
    raise ValueError(f'{path}: cannot read it as a PyTorch state dict '
                     f'({type(e).__name__}: {detail}); is the file complete?') from None


@functools.cache
def expected_variables() -> dict:
  """The FID Inception's variables as ShapeDtypeStructs (no allocation)."""
  x = jnp.zeros((1, RESOLUTION, RESOLUTION, 3), jnp.float32)
  return jax.eval_shape(lambda: InceptionV3().init(jax.random.key(0), x))


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
  training bookkeeping. Errors name the file's entries, in its own terms.
  """
  want = traverse_util.flatten_dict(expected_variables())
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


def cache_dir() -> str:
  return os.path.expanduser(os.environ.get('BIGGAN_JAX_CACHE') or
                            os.path.join('~', '.cache', 'biggan_jax'))


def _download(url: str, path: str) -> None:
  """url -> path via a temporary file and a rename; torch hub's sha256-prefix check."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.tmp-{os.getpid()}'
  digest = hashlib.sha256()
  try:
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, 'wb') as f:
      while chunk := response.read(1 << 20):
        digest.update(chunk)
        f.write(chunk)
    prefix = WEIGHTS_FILE.rsplit('-', 1)[-1].split('.')[0]
    if not digest.hexdigest().startswith(prefix):
      raise ValueError(f'sha256 {digest.hexdigest()[:8]}... is not the expected {prefix}...')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def load_weights(path: str | None = None) -> dict:
  """pytorch-fid's FID Inception weights as Flax variables.

  path None: `$BIGGAN_JAX_CACHE` (default ~/.cache/biggan_jax)/pt_inception-
  2015-12-05-6726825d.pth, downloaded from pytorch-fid's release the first
  time. Any failure is a one-line ValueError.
  """
  if path is None:
    path = os.path.join(cache_dir(), WEIGHTS_FILE)
    if not os.path.exists(path):
      try:
        _download(FID_WEIGHTS_URL, path)
      except Exception as e:  # pylint: disable=broad-except  # network, disk, checksum.
        raise ValueError(
            f'cannot download the FID Inception weights from {FID_WEIGHTS_URL} '
            f'({type(e).__name__}: {" ".join(str(e).split())[:150]}); fetch that file '
            '(e.g. on a machine with internet access) and pass --weights=FILE') from None
  if not os.path.isfile(path):
    raise ValueError(f'--weights={path}: no such file')
  return variables_from_state_dict(read_pth(path), path)


# ---------------------------------------------------------------------------
# Batched, sharded feature extraction.
# ---------------------------------------------------------------------------

@functools.cache
def _jitted(devices: tuple, precision: Any):
  """(mesh, resize, network) for these devices: one cache, whatever the extractors."""
  mesh = Mesh(np.asarray(devices), ('data',))
  replicated, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
  prepare = jax.jit(to_inception_input, in_shardings=batch, out_shardings=batch)
  network = jax.jit(InceptionV3(precision).apply, in_shardings=(replicated, batch),
                    out_shardings=batch)
  return mesh, prepare, network


class FeatureExtractor:
  """Images -> {'pool': (N, 2048), 'logits': (N, 1008)} numpy float32.

  Images are NHWC, uint8 in [0, 255] or float in [-1, 1] (G's output range),
  any resolution. They go through in batches of `batch_size` (rounded up to a
  multiple of the device count), the last one padded, so the network is
  compiled once; only the small resize program is compiled per input shape.
  With several local devices the batch is split over a 1-D 'data' mesh and the
  weights are replicated; each host extracts its own images' features.

  Args:
    weights: a pytorch-fid .pth (None: the cached or downloaded one), or
      variables as `load_weights` returns them.
    batch_size: images per network call, all devices together.
    devices: the mesh's devices (default: jax.local_devices()).
    precision: the convs' precision (see InceptionV3).
  """

  def __init__(self, weights: str | Mapping | None = None, batch_size: int = 200, *,
               devices=None, precision: Any = 'highest'):
    if batch_size < 1:
      raise ValueError(f'batch_size={batch_size}: must be >= 1')
    variables = weights if isinstance(weights, Mapping) else load_weights(weights)
    self.weights = None if isinstance(weights, Mapping) else (
        weights or os.path.join(cache_dir(), WEIGHTS_FILE))
    devices = tuple(jax.local_devices() if devices is None else devices)
    self.batch_size = -(-batch_size // len(devices)) * len(devices)
    self.mesh, self._prepare, self._network = _jitted(devices, precision)
    self._batch_sharding = NamedSharding(self.mesh, P('data'))
    self._variables = jax.device_put(variables, NamedSharding(self.mesh, P()))

  def _batches(self, images) -> Iterator[tuple[jax.Array, int]]:
    xp = jnp if isinstance(images, jax.Array) else np  # G's samples stay on device.
    for start in range(0, len(images), self.batch_size):
      chunk = xp.asarray(images[start:start + self.batch_size])
      n = len(chunk)
      if n < self.batch_size:
        chunk = xp.concatenate([chunk, xp.zeros((self.batch_size - n, *chunk.shape[1:]),
                                                chunk.dtype)])
      yield jax.device_put(chunk, self._batch_sharding), n

  def __call__(self, images) -> dict[str, np.ndarray]:
    shape, dtype = tuple(images.shape), np.dtype(images.dtype)
    if len(shape) != 4 or shape[-1] != 3:
      raise ValueError(f'images of shape {shape}: expected NHWC with 3 channels')
    if dtype != np.uint8 and dtype.kind != 'f':
      raise ValueError(f'images of dtype {dtype}: expected uint8 [0, 255] or float [-1, 1]')
    if isinstance(images, np.ndarray) and dtype.kind == 'f' and images.size and (
        images.min() < -1.01 or images.max() > 1.01):
      raise ValueError(f'float images in [{images.min():.3g}, {images.max():.3g}]: expected '
                       '[-1, 1] (pass uint8 for [0, 255])')
    out = {'pool': [], 'logits': []}
    pending = None

    def fetch(result, n):
      for key in out:  # slicing on the host: a device slice would compile per n.
        out[key].append(np.asarray(result[key], np.float32)[:n])

    for batch, n in self._batches(images):
      result = self._network(self._variables, self._prepare(batch))
      if pending is not None:
        fetch(*pending)  # the next batch is already dispatched.
      pending = (result, n)
    if pending is not None:
      fetch(*pending)
    width = {'pool': POOL_DIM, 'logits': NUM_LOGITS}
    return {k: np.concatenate(v) if v else np.zeros((0, width[k]), np.float32)
            for k, v in out.items()}


# ---------------------------------------------------------------------------
# The reference, for parity tests and benchmarks/fid.py.
# ---------------------------------------------------------------------------

def import_pytorch_fid():
  """pytorch_fid.inception, or None when torch or pytorch-fid is not installed.

  pytorch-fid needs only torchvision's Python model code; where torchvision's
  compiled ops do not load against the installed torch (a CPU torch with
  PyPI's torchvision), its package is imported without its __init__.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import types  # pylint: disable=g-import-not-at-top
  if importlib.util.find_spec('torch') is None or importlib.util.find_spec('pytorch_fid') is None:
    return None
  try:
    import pytorch_fid.inception as fid_inception  # pylint: disable=g-import-not-at-top
    return fid_inception
  except (ImportError, RuntimeError):
    pass
  for name in [m for m in sys.modules if m.split('.')[0] in ('torchvision', 'pytorch_fid')]:
    del sys.modules[name]
  tv = types.ModuleType('torchvision')
  tv.__path__ = [os.path.dirname(importlib.util.find_spec('torchvision').origin)]
  tv.__version__ = '0.28.0'
  sys.modules['torchvision'] = tv
  import torchvision.models  # pylint: disable=g-import-not-at-top
  tv.models = torchvision.models
  import pytorch_fid.inception as fid_inception  # pylint: disable=g-import-not-at-top
  return fid_inception
