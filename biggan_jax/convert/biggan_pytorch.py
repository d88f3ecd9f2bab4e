"""BigGAN-PyTorch state dicts -> biggan_jax variables, and back to numbers.

The mapping is the one proof that biggan_jax *is* BigGAN: tests run the
author's tiny G and D (tests/testdata/biggan_pytorch_{tiny64,unshared32,
deep64}_f64.npz) through it and match every output. Conventions handled here:
- conv weights (O, I, kh, kw) -> HWIO kernels; linear (O, I) -> (I, O);
  nn.Embedding tables (G's shared one, D's embed, and with G_shared=False
  every BN's gain/bias tables) stay (num_classes, C);
- SN buffers u0 (1, O) -> 'spectral/.../sn/u', sv0 -> 'sigma';
- G's first linear reshapes to NCHW upstream and to NHWC here: its output
  units (and u0) are permuted from c*16 + p to p*C + c;
- module names (BigGAN.py): blocks.i.0 -> block{i}, blocks.i.1 -> attn{i},
  output_layer.0/.2 -> output_bn/output_conv, bnK.stored_* -> bnK/stats/*;
- BigGANdeep.py (--model BigGANdeep): G's blocks are one flat list,
  blocks.{stage * depth + j}.0 -> block{stage}_{j}, the attention after a
  stage's last block blocks.{...}.1 -> attn{stage}; D's are one list per
  stage, blocks.{stage}.{j} -> block{stage}_{j}, its attention
  blocks.{stage}.{depth} -> attn{stage}. Upstream's deep G conditions on
  torch.cat([shared(y), z]) (class first), biggan_jax's BigGAN-deep on
  [z, shared(y)] as TF-Hub's: the converter swaps the input columns of the
  first linear and of every BN's gain and bias linears, which changes no
  output (SN's u lives on the output side and σ is invariant under a column
  permutation), so one model serves both sources.

The mapping takes name -> numpy array mappings; only `convert_folder` (the
`python -m biggan_jax.convert --source=biggan-pytorch` path, reading .pth
files) imports torch.
"""

import pathlib
import re
from typing import Any, Mapping

import jax
import numpy as np
from flax import traverse_util

from biggan_jax.formats import torch_pickle


class ConversionError(ValueError):
  """A state dict that does not fit the model; the message names the entry."""


_RENAMES = (
    (r'^blocks\.(\d+)\.0\.', r'block\1.'),
    (r'^blocks\.(\d+)\.1\.', r'attn\1.'),
    (r'^output_layer\.0\.', 'output_bn.'),
    (r'^output_layer\.2\.', 'output_conv.'),
)
FAMILIES = {'BigGAN': 'biggan', 'BigGANdeep': 'biggan_deep'}  # upstream's --model.


def _deep_block_name(name: str, depth: int, generator: bool) -> str:
  """BigGANdeep.py's blocks.i.j -> block{stage}_{j} / attn{stage} (module docstring)."""
  match = re.match(r'^blocks\.(\d+)\.(\d+)\.', name)
  if not match:
    return name
  i, j = int(match.group(1)), int(match.group(2))
  if generator:
    stage, block = divmod(i, depth)
    new = f'block{stage}_{block}.' if j == 0 else f'attn{stage}.'
  else:
    new = f'block{i}_{j}.' if j < depth else f'attn{i}.'
  return new + name[match.end():]


def _flax_entry(name: str, deep_depth: int = 0,
                generator: bool = True) -> tuple[str, tuple[str, ...], str]:
  """Torch name -> (collection, flax path, kind of transform); deep_depth > 0: BigGANdeep.py."""
  if deep_depth:
    name = _deep_block_name(name, deep_depth, generator)
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


def _class_first_to_z_first(flat: dict, shared_dim: int) -> None:
  """BigGANdeep.py's c = [shared(y), z] -> biggan_jax's [z, shared(y)]: the input rows
  of the first linear and of every BN gain/bias kernel (flax (in, out))."""
  for key, value in flat.items():
    if key[0] == 'params' and key[-1] == 'kernel' and (
        key[1:] == ('linear', 'kernel') or key[-2] in ('gain', 'bias')):
      flat[key] = np.concatenate([value[shared_dim:], value[:shared_dim]], axis=0)


def to_variables(state_dict: Mapping[str, Any], expected: Mapping[str, Any],
                 *, generator: bool, model=None, dtype=np.float32) -> dict:
  """Maps a BigGAN-PyTorch G or D state dict onto biggan_jax variables.

  Args:
    state_dict: name -> array (numpy or torch tensors already .numpy()'d).
    expected: the model's variables (or their jax.eval_shape) to fill; every
      leaf must be provided exactly once with the same shape.
    generator: True for G (permutes the first linear to NHWC).
    model: the `config.model` it was converted for (model_config_from_pytorch);
      None means BigGAN.py's layout. family 'biggan_deep' reads BigGANdeep.py's.
    dtype: of the leaves; np.float64 keeps a float64 state dict exact (the
      iteration-parity test, tests/training/test_iteration_parity.py).
  Returns:
    {'params', 'spectral'[, 'batch_stats']} with numpy leaves of `dtype`.
  """
  deep = model is not None and model.family == 'biggan_deep'
  depth = (model.g_depth if generator else model.d_depth) if deep else 0
  want = traverse_util.flatten_dict(dict(expected))
  flat = {}
  for name, value in state_dict.items():
    collection, path, kind = _flax_entry(name, depth, generator)
    key = (collection, *path)
    if kind == 'weight' and key not in want and (*key[:-1], 'embedding') in want:
      key, kind = (*key[:-1], 'embedding'), 'copy'  # G_shared=False: a BN's class table.
    flat[key] = _to_flax(kind, np.asarray(value, dtype))
  if generator and ('params', 'linear', 'kernel') in flat:
    # The checkpoint's own width: a mismatch is reported by the shape check below.
    _nchw_linear_to_nhwc(flat, flat[('params', 'linear', 'kernel')].shape[1] // 16)
    if deep:
      _class_first_to_z_first(flat, model.shared_dim)
  check_fits(flat, expected, shape_hint=' (check ch, dim_z, shared_dim, resolution)')
  return traverse_util.unflatten_dict(flat)


def check_fits(flat: Mapping[tuple, Any], expected: Mapping[str, Any], *,
               expects: str = 'the model expects', shape_hint: str = '') -> None:
  """Every leaf of `expected` is in `flat` (path -> array) with its shape, and
  nothing else is: a one-line ConversionError otherwise."""
  want = traverse_util.flatten_dict(dict(expected))
  missing = sorted('/'.join(k) for k in want.keys() - flat.keys())
  unused = sorted('/'.join(k) for k in flat.keys() - want.keys())
  if missing or unused:
    raise ConversionError(
        f'state dict does not fit the model: missing {missing[:5]}, unexpected '
        f'{unused[:5]} (is the model config the one the checkpoint was trained with?)')
  for key, leaf in want.items():
    if tuple(flat[key].shape) != tuple(leaf.shape):
      raise ConversionError(f"{'/'.join(key)}: checkpoint shape {tuple(flat[key].shape)} but "
                            f'{expects} {tuple(leaf.shape)}{shape_hint}')


def model_config_from_pytorch(cfg: Mapping[str, Any]):
  """A biggan_jax `config.model` from BigGAN-PyTorch's constructor kwargs."""
  from biggan_jax import config as config_lib
  m = config_lib.base_config().model
  m.family = FAMILIES[cfg.get('model', 'BigGAN')]
  m.resolution = int(cfg['resolution'])
  m.num_classes = int(cfg['n_classes'])
  m.ch = int(cfg['G_ch'])
  m.d_ch = int(cfg.get('D_ch', cfg['G_ch']))
  m.dim_z = int(cfg['dim_z'])
  m.shared_dim = int(cfg.get('shared_dim') or cfg['dim_z'])
  m.hierarchical_z = bool(cfg.get('hier', False))
  m.shared_embedding = bool(cfg.get('G_shared', True))
  if m.family == 'biggan_deep':
    m.g_depth = int(cfg.get('G_depth', 2))
    m.d_depth = int(cfg.get('D_depth', 2))
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


# ---------------------------------------------------------------------------
# A BigGAN-PyTorch weights folder (weights/<run>/ as its train.py writes it).
# ---------------------------------------------------------------------------

GENERATOR_FILES = ('G_ema.pth', 'G.pth')  # the EMA G is what upstream samples from.
# Constructor arguments the mapping depends on; the rest of the run config is ignored.
_REQUIRED_CONFIG = ('G_ch', 'dim_z', 'resolution', 'n_classes')


def torch_load(path: pathlib.Path) -> Any:
  """A weights file: torch.load(weights_only=True), tensors and containers only."""
  import torch
  try:
    return torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # torch raises many kinds.
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    detail = next((l for l in lines if 'WeightsUnpickler' in l or 'failed' in l),
                  lines[-1] if lines else '')
    raise ConversionError(f'{path}: cannot read it ({type(e).__name__}: {detail[:200]}); '
                          'is the file complete?') from None


def state_dict_arrays(obj: Any, path: pathlib.Path) -> dict[str, np.ndarray]:
  """A torch state dict (name -> tensor) as name -> float32 numpy arrays."""
  import torch
  if not isinstance(obj, Mapping) or not obj:
    raise ConversionError(f'{path}: not a state dict (name -> tensor)')
  arrays = {}
  for name, value in obj.items():
    if not isinstance(value, torch.Tensor):
      raise ConversionError(f'{path}: entry {name!r} is a {type(value).__name__}, not a tensor')
    arrays[str(name)] = value.detach().to(torch.float32).numpy()
  return arrays


def describe_other_format(folder: pathlib.Path, names: set[str]) -> str | None:
  """What `folder` is, if it is some other source format we recognise."""
  if 'pytorch_model.bin' in names or ('config.json' in names and 'model.safetensors' in names):
    return ('looks like a pytorch-pretrained-BigGAN (huggingface) folder (config.json, '
            'pytorch_model.bin): use --source=huggingface')
  if {'saved_model.pb', 'tfhub_module.pb'} & names or (folder / 'variables').is_dir():
    return 'looks like a TF-Hub module (saved_model.pb, variables/): use --source=tfhub'
  if 'meta.json' in names:
    return 'is already a converted biggan_jax checkpoint directory'
  return None


def read_folder(folder) -> dict[str, Any]:
  """Reads a BigGAN-PyTorch weights folder.

  Returns {'config': run config dict, 'generator': name -> array, 'generator_file',
  'discriminator': name -> array or None, 'itr': int or None}. Raises
  ConversionError (one line) for anything that is not such a folder.
  """
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ConversionError(f'--input={folder}: no such directory')
  names = {p.name for p in folder.iterdir()}
  g_file = next((n for n in GENERATOR_FILES if n in names), None)
  if g_file is None:
    other = describe_other_format(folder, names)
    if other:
      raise ConversionError(f'--input={folder} {other}, not a BigGAN-PyTorch weights folder')
    if 'D.pth' in names:
      raise ConversionError(
          f'--input={folder} holds only a discriminator (D.pth); a generator '
          f'({" or ".join(GENERATOR_FILES)}) is needed')
    raise ConversionError(
        f'--input={folder}: no {" or ".join(GENERATOR_FILES)}; expected a BigGAN-PyTorch '
        'weights folder (weights/<run>/ as its train.py writes it)')
  if 'state_dict.pth' not in names:
    raise ConversionError(
        f"--input={folder}: no state_dict.pth, whose 'config' entry gives the architecture")
  try:
    state = torch_pickle.read_plain_data(folder / 'state_dict.pth')
  except ValueError as e:
    raise ConversionError(str(e)) from None
  cfg = state.get('config') if isinstance(state, Mapping) else None
  if not isinstance(cfg, Mapping):
    raise ConversionError(f"{folder / 'state_dict.pth'}: no 'config' entry (the run's "
                          'hyperparameters); is this a BigGAN-PyTorch state_dict.pth?')
  missing = [k for k in _REQUIRED_CONFIG if not isinstance(cfg.get(k), (int, str))]
  if missing:
    raise ConversionError(f"{folder / 'state_dict.pth'}: its config lacks {missing}")
  itr = state.get('itr')
  return dict(
      config=dict(cfg),
      generator=state_dict_arrays(torch_load(folder / g_file), folder / g_file),
      generator_file=g_file,
      discriminator=(state_dict_arrays(torch_load(folder / 'D.pth'), folder / 'D.pth')
                     if 'D.pth' in names else None),
      itr=int(itr) if isinstance(itr, int) else None)


def _check_supported(cfg: Mapping[str, Any]) -> None:
  """Upstream options biggan_jax's BigGAN does not implement: say so up front."""
  unsupported = []
  model = cfg.get('model', 'BigGAN')
  if model not in FAMILIES:
    unsupported.append(f'model={model!r} (BigGAN or BigGANdeep)')
  elif not cfg.get('G_shared', True) and (cfg.get('hier') or model == 'BigGANdeep'):
    unsupported.append(f'G_shared=False with {"BigGANdeep" if model == "BigGANdeep" else "hier"} '
                       '(upstream joins z to the shared embedding, which it then lacks)')
  for key in ('G_nl', 'D_nl'):
    if cfg.get(key, 'relu') not in ('relu', 'inplace_relu', 'ir'):
      unsupported.append(f'{key}={cfg[key]!r} (only ReLU)')
  if cfg.get('norm_style', 'bn') != 'bn':
    unsupported.append(f"norm_style={cfg['norm_style']!r}")
  if unsupported:
    raise ConversionError(f'unsupported BigGAN-PyTorch options: {", ".join(unsupported)}')


def _check_attention_width(m) -> None:
  """Upstream builds attention on any width; at < 8 channels its C/8 theta and phi
  convs are empty and the attention is a uniform average. biggan_jax's model
  needs >= 8 channels there: say so in one line instead of failing inside Flax."""
  from biggan_jax.models import architectures
  g_attn, d_attn = architectures.attention_resolutions(m)
  for key, flag, resolutions, widths, ch in (
      ('G_attn', 'G_ch', g_attn, architectures.G_ATTENTION_WIDTHS[m.resolution], m.ch),
      ('D_attn', 'D_ch', d_attn, architectures.D_ATTENTION_WIDTHS[m.family][m.resolution],
       architectures.d_width(m))):
    for r in resolutions:
      if r in widths and ch * widths[r] < 8:
        raise ConversionError(
            f'{key}={r}: its attention gets {ch * widths[r]} channels ({flag}={ch} x '
            f'{widths[r]}), so upstream\'s C/8 projections are empty (the block is a uniform '
            'average); biggan_jax builds attention on >= 8 channels only')


def convert_folder(folder) -> tuple[dict, dict, dict | None]:
  """A BigGAN-PyTorch weights folder -> (meta, G variables, D variables or None).

  `meta` is what the converted checkpoint directory stores (see
  biggan_jax/convert/checkpoint_dir.py): the model config, the paper's
  truncation convention (upstream samples z from a truncated normal with
  fixed BN statistics) and where the weights came from.
  """
  import jax.numpy as jnp
  from biggan_jax import models
  run = read_folder(folder)
  _check_supported(run['config'])
  try:
    m = model_config_from_pytorch(run['config'])
  except (KeyError, TypeError, ValueError) as e:
    raise ConversionError(f"state_dict.pth's config: unusable value for {e}") from None
  _check_attention_width(m)
  z = jnp.zeros((1, m.dim_z), jnp.float32)
  y = jnp.zeros((1,), jnp.int32)
  G = models.create_generator(m)
  g_vars = to_variables(run['generator'], expected_variables(G, z, y), generator=True,
                        model=m)
  d_vars = None
  if run['discriminator'] is not None:
    D = models.create_discriminator(m)
    x = jnp.zeros((1, m.resolution, m.resolution, 3), jnp.float32)
    d_vars = to_variables(run['discriminator'], expected_variables(D, x, y), generator=False,
                          model=m)
  meta = {'source': 'biggan-pytorch', 'model': m.to_dict(),
          'truncation_convention': 'paper',
          'source_files': [run['generator_file']] + (['D.pth'] if d_vars is not None else []),
          'source_itr': run['itr']}
  if str(run['config'].get('dataset', '')).startswith('I') and m.num_classes == 1000:
    meta['class_names'] = 'imagenet'  # upstream's I32..I256(_hdf5): ImageNet's classes.
  return meta, g_vars, d_vars
