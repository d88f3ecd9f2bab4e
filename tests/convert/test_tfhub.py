"""--source=tfhub: a TF-Hub BigGAN-deep module folder, numerically.

No TF-Hub module is downloaded: the tiny random pytorch-pretrained-BigGAN
model of tests/hf_fixture.py is written as a TF1 hub module folder through
the package's own TF -> PyTorch map (`build_tf_to_pytorch_map`, inverted):
TF names and layouts (linear (in, out), conv HWIO, u0 (1, out)), a random u0
per SN weight from which the package's weight_v/weight_u are recomputed as its
converter does (so the torch model computes what TF-Hub's one inference power
step computes), variables saved by a tf.compat.v1 Saver, and a saved_model.pb
whose default graph holds the BN tables as nodes stack_{5j+1}, stack_{5j+3}
(Pack of Consts, one through Identity, one folded Const) between decoy stacks
of the same shape, as the package's extraction indexes them.
"""

import pathlib
import shutil

import numpy as np
import pytest

import biggan_jax
from biggan_jax import convert
from biggan_jax.convert import __main__ as convert_main
from biggan_jax.checkpoints import converted as checkpoint_dir
from biggan_jax.convert import tfhub

pytest.importorskip('torch')
pytest.importorskip('pytorch_pretrained_biggan')
tf = pytest.importorskip('tensorflow')
import hf_fixture
from cli_checks import one_error_line
from tfhub_fixture import write_variables

EPS = 1e-4


def tfhub_module(seed: int = 0):
  """(the package's model with SN buffers from u0, TF-Hub variables, BN tables)."""
  import torch
  from pytorch_pretrained_biggan import convert_tf_to_pytorch
  model, _ = hf_fixture.tiny_model(seed)
  tf_map = convert_tf_to_pytorch.build_tf_to_pytorch_map(model, model.config)
  owner = {m.weight_u.data_ptr(): m for m in model.modules() if hasattr(m, 'weight_u')}
  gen = torch.Generator().manual_seed(seed + 1)
  variables = {}
  with torch.no_grad():
    for name, tensor in tf_map.items():
      if name.endswith('/u0'):  # TF-Hub's u0; the package's buffers follow from it.
        module = owner[tensor.data_ptr()]
        w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
        u0 = torch.randn(w.shape[0], generator=gen)
        v = torch.nn.functional.normalize(torch.mv(w.t(), u0), dim=0, eps=EPS)
        module.weight_v.copy_(v)
        module.weight_u.copy_(torch.nn.functional.normalize(torch.mv(w, v), dim=0, eps=EPS))
        variables[name] = u0.numpy()[None, :]
      elif tensor.dim() == 4:
        variables[name] = tensor.numpy().transpose(2, 3, 1, 0)  # OIHW -> HWIO
      elif tensor.dim() == 2:
        variables[name] = tensor.numpy().T
      else:
        variables[name] = tensor.numpy().copy()
  bns = [getattr(l, f'bn_{k}') for l in model.generator.layers if hasattr(l, 'bn_0')
         for k in range(4)] + [model.generator.bn]
  tables = [t.numpy().copy() for bn in bns for t in (bn.running_means, bn.running_vars)]
  return model.eval(), variables, tables


def write_graph(folder: pathlib.Path, tables: list, stacks: bool = True) -> None:
  """saved_model.pb: an untagged default graph with the stacks, and a tagged decoy."""
  from tensorflow.core.protobuf import saved_model_pb2
  rng = np.random.default_rng(7)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.placeholder(tf.float32, [None, 16], name='z')
    for i in range(5 * len(tables) // 2 if stacks else 0):
      j, k = divmod(i, 5)
      name = f'stack_{i}' if i else 'stack'
      if k not in (1, 3):  # a decoy of the same shape
        table = rng.normal(size=tables[2 * j].shape).astype(np.float32)
      else:
        table = tables[2 * j + k // 2]
      if k not in (1, 3) or i == 1:  # one folded Const
        tf.constant(table, name=name)
        continue
      rows = [tf.constant(r) for r in table]
      if i == 6:  # rows through Identity ops
        rows = [tf.identity(r) for r in rows]
      tf.raw_ops.Pack(values=rows, axis=0, name=name)
  saved = saved_model_pb2.SavedModel(saved_model_schema_version=1)
  saved.meta_graphs.add().graph_def.CopyFrom(graph.as_graph_def())
  decoy = saved.meta_graphs.add()
  decoy.meta_info_def.tags.append('train')
  with tf.Graph().as_default() as other:
    tf.raw_ops.Pack(values=[tf.constant(np.zeros(3, np.float32))] * 51, axis=0, name='stack_1')
  decoy.graph_def.CopyFrom(other.as_graph_def())
  (folder / 'saved_model.pb').write_bytes(saved.SerializeToString())


def write_module(folder: pathlib.Path, variables, tables, *, prefix='', stacks=True):
  folder.mkdir(parents=True)
  write_variables(folder, variables, prefix)
  write_graph(folder, tables, stacks)
  (folder / 'tfhub_module.pb').write_bytes(b'')
  return folder


@pytest.fixture(scope='module')
def module(tmp_path_factory):
  model, variables, tables = tfhub_module()
  folder = write_module(tmp_path_factory.mktemp('tfhub') / 'biggan-deep-tiny', variables,
                        tables)
  return folder, model, variables, tables


@pytest.fixture(scope='module')
def converted(module, tmp_path_factory):
  out = tmp_path_factory.mktemp('converted') / 'deep'
  convert.convert('tfhub', str(module[0]), str(out))
  return out


@pytest.fixture(scope='module')
def sampler(converted):
  return biggan_jax.load_generator(converted)


def reference_images(model, z, y, truncation):
  """hf_fixture's, on one thread: on 2 shared cores torch's pool is 20x slower."""
  import torch
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  try:
    return hf_fixture.reference_images(model, z, y, truncation)
  finally:
    torch.set_num_threads(threads)


def rel_err(a, b):
  return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize('truncation', [0.14, 0.5, 1.0])
def test_outputs_match_tfhub_inference(sampler, module, truncation):
  rng = np.random.default_rng(int(truncation * 100))
  y = rng.integers(0, 10, 4)
  z = (truncation * np.clip(rng.standard_normal((4, 16)), -2, 2)).astype(np.float32)
  want = reference_images(module[1], z, y, truncation)
  got = sampler.sample(y, z=z, truncation=truncation)
  assert got.shape == want.shape == (4, 128, 128, 3)
  assert np.abs(want).std() > 0.05
  err = rel_err(got, want)
  print(f'tfhub parity at truncation {truncation}: rel err {err:.2e}')
  assert err <= 1e-4


def test_meta(converted):
  meta = checkpoint_dir.read_meta(converted)
  assert (meta['source'], meta['truncation_convention'], meta['num_bn_stats']) == (
      'tfhub', 'tfhub', 51)
  assert not meta['has_discriminator']
  m = meta['model']
  assert (m['family'], m['resolution'], m['ch'], m['dim_z'], m['num_classes'], m['g_attn']) == (
      'biggan_deep', 128, 4, 16, 10, '64')
  assert m['bn_eps'] == m['sn_eps'] == m['output_bn_eps'] == 1e-4


def test_fixture_graph_has_each_node_form(module):
  """The stacks the converter must resolve come in the three forms it handles."""
  from tensorflow.core.protobuf import saved_model_pb2
  saved = saved_model_pb2.SavedModel.FromString((module[0] / 'saved_model.pb').read_bytes())
  nodes = {n.name: n for n in saved.meta_graphs[0].graph_def.node}
  assert nodes['stack_1'].op == 'Const' and nodes['stack_3'].op == 'Pack'
  assert nodes[nodes['stack_6'].input[0]].op == 'Identity'
  assert 'stack_205' not in nodes and 'stack_204' in nodes  # 41 BNs x 5 stacks


def test_module_prefix_is_dropped(module, tmp_path):
  """Names read as 'module/...' (as a hub.Module instantiates them) mean the same."""
  variables = module[2]
  write_variables(tmp_path, variables, prefix='module/')
  names = [n for n, _ in tf.train.list_variables(str(tmp_path / 'variables' / 'variables'))]
  assert len(names) == len(variables) and all(n.startswith('module/') for n in names)
  read = tfhub.read_variables(tmp_path)
  assert read.keys() == variables.keys()
  for name, value in variables.items():
    np.testing.assert_array_equal(read[name], value)


@pytest.mark.parametrize('case, source, needles', [
    ('no_variables', 'tfhub', ['no variables/variables.index', 'TF-Hub module']),
    ('non_deep', 'tfhub', ['neither a TF-Hub BigGAN-deep module (GBlock*/conv3) nor a BigGAN '
                           'one', 'not a module biggan_jax knows']),
    ('no_stacks', 'tfhub', ['saved_model.pb', 'holds no BN statistics tables where expected',
                            'stack_1: no such node', '--source=huggingface']),
    ('stats_width', 'tfhub', ['BN statistics of Generator/GBlock/BatchNorm (stack_1, stack_3) '
                              'have shape (51, 63)']),
    ('hf_folder', 'tfhub', ['pytorch-pretrained-BigGAN', 'use --source=huggingface',
                            'not a TF-Hub module']),
    ('tfhub_as_huggingface', 'huggingface', ['TF-Hub module', 'use --source=tfhub']),
])
def test_bad_input_is_one_line(case, source, needles, module, tmp_path, capsys):
  folder, _, variables, tables = module
  if case == 'no_variables':
    folder = tmp_path / 'copy'
    shutil.copytree(module[0], folder)
    shutil.rmtree(folder / 'variables')
  elif case == 'non_deep':
    folder = tmp_path / 'non_deep'
    folder.mkdir()
    write_variables(folder, {k: v for k, v in variables.items() if '/conv3/' not in k})
    shutil.copy(module[0] / 'saved_model.pb', folder)
  elif case == 'no_stacks':
    folder = tmp_path / 'no_stacks'
    folder.mkdir()
    shutil.copytree(module[0] / 'variables', folder / 'variables')
    write_graph(folder, tables, stacks=False)
  elif case == 'stats_width':
    folder = tmp_path / 'stats_width'
    folder.mkdir()
    shutil.copytree(module[0] / 'variables', folder / 'variables')
    write_graph(folder, [tables[0][:, :-1]] + tables[1:])
  elif case == 'hf_folder':
    folder = pathlib.Path(hf_fixture.write_tiny_hf(tmp_path / 'hf'))
  out = tmp_path / 'out'
  code = convert_main.main(['convert', f'--source={source}', f'--input={folder}',
                            f'--output={out}'])
  assert code == 2
  one_error_line(capsys, *needles)
  assert not out.exists()
