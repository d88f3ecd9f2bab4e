"""TF-Hub BigGAN-deep modules -> biggan_jax variables (the original BigGAN modules: tfhub_v1.py).

    python -m biggan_jax.convert --source=tfhub --input=MODULE_DIR --output=DIR

MODULE_DIR is a TF1 hub module as tfhub.dev serves deepmind/biggan-deep-128/1
(-256, -512), untarred: saved_model.pb, tfhub_module.pb and
variables/variables.{index,data-*}. The variables (read with TensorFlow, which
only this converter imports) are EMA weights `<scope>/w/ema_0.9999`,
`<scope>/b/ema_0.9999` and spectral-norm vectors `<scope>/u0` (1, out); linear
kernels are (in, out), conv kernels HWIO, the class embedding `linear/w`
(num_classes, dim). They are laid out as pytorch-pretrained-BigGAN's own TF
converter lays them out (weight_v = normalize(Wᵀu0), weight_u =
normalize(W v): TF's one inference power step from u0) and go through
`huggingface.to_variables`, so that the two sources share one mapping and the
outputs equal TF-Hub's inference.

The BN statistics (51 means/vars per BN, one per truncation 0, 0.02, ..., 1)
are not variables but constants of the module's graph: pytorch-pretrained-
BigGAN reads them as `module_apply_default/stack_{i}` after applying the
module. Here they are read from saved_model.pb (the default, untagged
MetaGraphDef) without running anything: the j-th BN (GBlocks in order, 4 BNs
each, then the output BN) has its means in node `stack_{5j+1}` and its vars in
`stack_{5j+3}`, each a Const or a Pack of Consts (through Identity ops).
"""

import contextlib
import os
import pathlib
import re
from typing import Any, Callable

import numpy as np

from biggan_jax.convert import biggan_pytorch
from biggan_jax.convert import huggingface
from biggan_jax.convert import tfhub_v1

ConversionError = biggan_pytorch.ConversionError
GRAPH = 'saved_model.pb'
VARIABLES = 'variables/variables'
EMA = 'ema_0.9999'
EPS = 1e-4  # BN and SN eps of the released modules (pytorch-pretrained-BigGAN's config).
ATTENTION_LAYER_POSITION = 8  # attention after GBlock 7 in all three modules.
RESOLUTIONS = {10: 128, 12: 256, 14: 512}  # GBlocks -> resolution.
_GBLOCK = re.compile(r'Generator/GBlock(?:_(\d+))?/')
_NO_STATS = ("{path}: the module's graph holds no BN statistics tables where expected "
             '(Const or Pack-of-Const nodes stack_1, stack_3, ...; {node}); the same weights '
             'converted by pytorch-pretrained-BigGAN convert with --source=huggingface')


@contextlib.contextmanager
def _quiet_stderr():
  """TensorFlow's C++ logging writes to fd 2 on import and first use; the CLI's
  contract is one `error:` line there, so fd 2 points at /dev/null meanwhile."""
  saved = os.dup(2)
  try:
    with open(os.devnull, 'w') as null:
      os.dup2(null.fileno(), 2)
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)


def _tf():
  try:
    with _quiet_stderr():
      import tensorflow as tf
  except ImportError:
    raise ConversionError('--source=tfhub reads TF-Hub modules with TensorFlow: '
                          'pip install tensorflow-cpu') from None
  return tf


# ---------------------------------------------------------------------------
# Variables.
# ---------------------------------------------------------------------------

def read_variables(folder: pathlib.Path) -> dict[str, np.ndarray]:
  """Every checkpoint variable by name, a leading 'module/' dropped."""
  tf = _tf()
  prefix = folder / VARIABLES
  try:
    with _quiet_stderr():
      reader = tf.train.load_checkpoint(str(prefix))
      shapes = reader.get_variable_to_shape_map()
      out = {n: np.asarray(reader.get_tensor(n)) for n in shapes}
  except (tf.errors.OpError, ValueError) as e:
    raise ConversionError(f'{prefix}: unreadable checkpoint ({type(e).__name__}); is the '
                          'download complete?') from None
  return {n.removeprefix('module/'): v for n, v in out.items()}


def _normalize(x: np.ndarray) -> np.ndarray:
  return x / max(np.linalg.norm(x), EPS)  # torch.nn.functional.normalize(eps=EPS)


def to_state_dict(tf_vars: dict[str, np.ndarray], num_blocks: int,
                  tables: list[np.ndarray]) -> dict[str, np.ndarray]:
  """TF-Hub variables + BN tables -> pytorch-pretrained-BigGAN's state dict.

  The names are pytorch-pretrained-BigGAN's (its `build_tf_to_pytorch_map`); the BN
  `tables` are means, vars of each BN in order (see the module docstring).
  """
  sd = {}

  def get(name):
    if name not in tf_vars:
      raise ConversionError(f'{VARIABLES}: no {name!r}; is this a BigGAN-deep module?')
    return np.asarray(tf_vars[name], np.float32)

  def vector(name, size=None):
    x = get(name)  # (n,), or (1, n) as u0 is.
    if any(d != 1 for d in x.shape[:-1]) or (size is not None and x.size != size):
      raise ConversionError(f'{VARIABLES}: {name} has shape {x.shape}, expected '
                            f'({size if size is not None else "n"},)')
    return x.reshape(-1)

  def sn(scope, dst, conv, bias=False):
    w = get(f'{scope}/w/{EMA}')
    if w.ndim != (4 if conv else 2):
      raise ConversionError(f'{VARIABLES}: {scope}/w/{EMA} has shape {w.shape}, expected a '
                            f'{"4-D HWIO conv" if conv else "2-D (in, out) linear"} kernel')
    w = w.transpose(3, 2, 0, 1) if conv else w.T  # torch's (out, in[, kh, kw]).
    w_mat = w.reshape(w.shape[0], -1).astype(np.float64)
    u0 = vector(f'{scope}/u0', w.shape[0]).astype(np.float64)
    v = _normalize(w_mat.T @ u0)
    sd[f'{dst}.weight_orig'] = w
    sd[f'{dst}.weight_v'] = v.astype(np.float32)
    sd[f'{dst}.weight_u'] = _normalize(w_mat @ v).astype(np.float32)
    if bias:
      sd[f'{dst}.bias'] = vector(f'{scope}/b/{EMA}', w.shape[0])

  def stats(scope, dst, channels):
    j = len(bns)
    bns.append(scope)
    means, vars_ = tables[2 * j], tables[2 * j + 1]
    for t in (means, vars_):
      if t.shape != (t.shape[0], channels):
        raise ConversionError(f'{GRAPH}: BN statistics of {scope} (stack_{5 * j + 1}, '
                              f'stack_{5 * j + 3}) have shape {t.shape}, expected '
                              f'(n_stats, {channels})')
    sd[f'{dst}.running_means'], sd[f'{dst}.running_vars'] = means, vars_

  bns = []  # BN scopes in graph order.
  sd['embeddings.weight'] = get(f'linear/w/{EMA}').T
  sn('Generator/GenZ/G_linear', 'generator.gen_z', False, bias=True)
  index = 0
  for i in range(num_blocks):
    if i == ATTENTION_LAYER_POSITION:
      scope, dst = 'Generator/attention', f'generator.layers.{index}'
      for theirs in ('theta', 'phi', 'g', 'o_conv'):
        sn(f'{scope}/{theirs}', f'{dst}.snconv1x1_{theirs}', True)
      sd[f'{dst}.gamma'] = vector(f'{scope}/gamma/{EMA}', 1)
      index += 1
    scope, dst = f'Generator/GBlock_{i}' if i else 'Generator/GBlock', f'generator.layers.{index}'
    for k in range(4):
      bn = f'{scope}/BatchNorm_{k}' if k else f'{scope}/BatchNorm'
      sn(f'{bn}/scale', f'{dst}.bn_{k}.scale', False)
      sn(f'{bn}/offset', f'{dst}.bn_{k}.offset', False)
      stats(bn, f'{dst}.bn_{k}', sd[f'{dst}.bn_{k}.scale.weight_orig'].shape[0])
      sn(f'{scope}/conv{k}', f'{dst}.conv_{k}', True, bias=True)
    index += 1
  sd['generator.bn.weight'] = vector(f'Generator/BatchNorm/scale/{EMA}')
  sd['generator.bn.bias'] = vector(f'Generator/BatchNorm/offset/{EMA}',
                                   sd['generator.bn.weight'].size)
  stats('Generator/BatchNorm', 'generator.bn', sd['generator.bn.weight'].size)
  sn('Generator/conv_to_rgb', 'generator.conv_to_rgb', True, bias=True)
  return sd


def architecture(tf_vars: dict[str, np.ndarray]) -> dict[str, Any]:
  """A pytorch-pretrained-BigGAN config dict inferred from the variables' shapes."""
  if not any(n.startswith('Generator/') for n in tf_vars):
    raise ConversionError(f'{VARIABLES}: no Generator/ variables; not a TF-Hub BigGAN module')
  if not any(re.match(r'Generator/GBlock(_\d+)?/conv3/', n) for n in tf_vars):
    raise ConversionError(f'{VARIABLES}: neither a TF-Hub BigGAN-deep module (GBlock*/conv3) '
                          'nor a BigGAN one (Generator/G_Z/G_linear, GBlock*/HyperBN): not a '
                          'module biggan_jax knows (deepmind/biggan-[deep-]128/256/512)')
  blocks = {int(m.group(1) or 0) for m in map(_GBLOCK.match, tf_vars) if m}
  n = len(blocks)
  if blocks != set(range(n)) or n not in RESOLUTIONS:
    raise ConversionError(f'{VARIABLES}: GBlocks {sorted(blocks)}; BigGAN-deep 128/256/512 '
                          'have 10/12/14 (GBlock, GBlock_1, ...)')
  shape = lambda name: np.shape(tf_vars.get(name, np.zeros(0)))
  embed, gen_z, to_rgb = (shape(f'{s}/w/{EMA}') for s in
                          ('linear', 'Generator/GenZ/G_linear', 'Generator/conv_to_rgb'))
  if len(embed) != 2 or len(gen_z) != 2 or len(to_rgb) != 4:
    raise ConversionError(f'{VARIABLES}: linear/w {embed}, Generator/GenZ/G_linear/w {gen_z}, '
                          f'Generator/conv_to_rgb/w {to_rgb}: not BigGAN-deep kernels')
  num_classes, class_dim = embed
  z_dim = gen_z[0] - class_dim
  if z_dim != class_dim:
    raise ConversionError(f'{VARIABLES}: z is {z_dim}-D and the class embedding '
                          f'{class_dim}-D; biggan_jax needs them equal')
  resolution = RESOLUTIONS[n]
  return dict(output_dim=resolution, z_dim=z_dim, class_embed_dim=class_dim,
              channel_width=int(to_rgb[2]), num_classes=num_classes,
              layers=huggingface.expected_layers(resolution),
              attention_layer_position=ATTENTION_LAYER_POSITION, eps=EPS)


# ---------------------------------------------------------------------------
# BN statistics from the graph.
# ---------------------------------------------------------------------------

def _default_graph(folder: pathlib.Path):
  tf = _tf()
  from google.protobuf import message
  from tensorflow.core.protobuf import saved_model_pb2
  path = folder / GRAPH
  if not path.is_file():
    raise ConversionError(f'{path}: missing; the module\'s graph holds its BN statistics')
  saved = saved_model_pb2.SavedModel()
  try:
    saved.ParseFromString(path.read_bytes())
  except (OSError, message.DecodeError) as e:
    raise ConversionError(f'{path}: unreadable ({type(e).__name__})') from None
  graphs = [g for g in saved.meta_graphs if not g.meta_info_def.tags] or list(saved.meta_graphs)
  if len(graphs) != 1:
    raise ConversionError(f'{path}: {len(saved.meta_graphs)} graphs and none untagged; '
                          'expected a hub module\'s default graph')
  return tf, graphs[0].graph_def


def _constant(nodes: dict, name: str, make_ndarray: Callable) -> np.ndarray | None:
  """The value of node `name` if it is a Const or a Pack of Consts (via Identity)."""
  node = nodes.get(name.split(':')[0])
  if node is None:
    return None
  if node.op == 'Const':
    return make_ndarray(node.attr['value'].tensor)
  if node.op == 'Identity':
    return _constant(nodes, node.input[0], make_ndarray)
  if node.op == 'Pack':
    parts = [_constant(nodes, i, make_ndarray) for i in node.input if not i.startswith('^')]
    if parts and all(p is not None for p in parts):
      return np.stack(parts, axis=node.attr['axis'].i)
  return None


def read_bn_tables(folder: pathlib.Path, num_bns: int) -> list[np.ndarray]:
  """[means, vars] of each of `num_bns` BNs, from nodes stack_{5j+1}, stack_{5j+3}."""
  tf, graph_def = _default_graph(folder)
  nodes = {n.name: n for n in graph_def.node}
  tables = []
  for j in range(num_bns):
    for i in (5 * j + 1, 5 * j + 3):
      t = _constant(nodes, f'stack_{i}', tf.make_ndarray)
      if t is None or t.ndim != 2:
        found = ('no such node' if f'stack_{i}' not in nodes else
                 'not a constant' if t is None else f'shape {t.shape}')
        raise ConversionError(_NO_STATS.format(path=folder / GRAPH, node=f'stack_{i}: {found}'))
      tables.append(t.astype(np.float32))
  rows = {t.shape[0] for t in tables}
  if len(rows) != 1:
    raise ConversionError(f'{folder / GRAPH}: BN statistics tables with {sorted(rows)} rows; '
                          'expected one per truncation, the same in all')
  return tables


# ---------------------------------------------------------------------------
# A folder.
# ---------------------------------------------------------------------------

def _check_folder(folder: pathlib.Path) -> None:
  if not folder.is_dir():
    raise ConversionError(f'--input={folder}: no such directory')
  names = {p.name for p in folder.iterdir()}
  if (folder / f'{VARIABLES}.index').is_file():
    return
  other = biggan_pytorch.describe_other_format(folder, names)
  if other and 'tfhub' not in other:
    raise ConversionError(f'--input={folder} {other}, not a TF-Hub module')
  if any(n.endswith('.pth') for n in names):
    raise ConversionError(f'--input={folder} looks like a BigGAN-PyTorch weights folder '
                          '(.pth files): use --source=biggan-pytorch')
  raise ConversionError(f'--input={folder}: no {VARIABLES}.index; a TF-Hub module folder '
                        f'(e.g. deepmind/biggan-deep-128/1, untarred) holds {GRAPH} and '
                        'variables/')


def convert_folder(folder) -> tuple[dict, dict, None]:
  """A TF-Hub BigGAN-deep module folder -> (meta, G variables incl. the table, None);
  an original BigGAN module's: tfhub_v1.convert."""
  folder = pathlib.Path(folder)
  _check_folder(folder)
  tf_vars = read_variables(folder)
  if tfhub_v1.is_v1(tf_vars):
    return tfhub_v1.convert(tf_vars, str(folder))
  cfg = architecture(tf_vars)
  num_blocks = len(cfg['layers'])
  tables = read_bn_tables(folder, 4 * num_blocks + 1)
  cfg['n_stats'] = tables[0].shape[0]
  m = huggingface.model_config(cfg)
  sd = to_state_dict(tf_vars, num_blocks, tables)
  try:
    variables, table = huggingface.to_variables(sd, m, cfg['n_stats'])
    huggingface.check_shapes(variables, m)
  except ConversionError as e:
    # Its messages name the package's files; here the shapes come from the module.
    message = str(e).replace('config.json implies', 'the module\'s architecture implies')
    raise ConversionError(f'{folder}: {message}') from None
  variables[huggingface.STATS_COLLECTION] = table
  meta = {'source': 'tfhub', 'model': m.to_dict(), 'truncation_convention': 'tfhub',
          'class_names': 'imagenet', 'num_bn_stats': cfg['n_stats'], 'source_files': [GRAPH, VARIABLES]}
  return meta, variables, None
