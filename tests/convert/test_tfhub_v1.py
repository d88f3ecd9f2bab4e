"""--source=tfhub on TF-Hub's original BigGAN modules (deepmind/biggan-128/256/512).

No module is downloaded. The author's tiny BigGAN-PyTorch G (the tiny64
fixture, tests/testdata/biggan_pytorch_tiny64_f64.npz) is written as a TF1 hub
module folder with the modules' variable names and layouts, as BigGAN-PyTorch's
TFHub/converter.py reads them (the table below, written from its
TFHub2Pytorch / convert_from_v1 mapping, not from our converter): HWIO convs,
(in, out) linears, u0 (1, out), G_linear's outputs in NHWC order, HyperBN
columns [z chunk, class], EMA copies `ema_b999900` beside raw ones (decoys),
`u1` decoys and BN statistics in CrossReplicaBN accumulators.
"""

import jax
import numpy as np
import pytest

import biggan_jax
from biggan_jax import convert, models
from biggan_jax.checkpoints import converted as checkpoint_dir
from biggan_jax.convert import __main__ as convert_main
from biggan_jax.convert import biggan_pytorch as bp
from biggan_jax.convert import tfhub_v1
from cli_checks import one_error_line
from paths import TESTDATA

pytest.importorskip('tensorflow')
from tfhub_fixture import write_variables

EMA = 'ema_b999900'


@pytest.fixture(scope='module')
def ref():
  return np.load(TESTDATA / 'biggan_pytorch_tiny64_f64.npz')


def fixture_state_dict(ref):
  prefix = 'G_after_train_fwd/'
  return {k[len(prefix):]: ref[k].astype(np.float32) for k in ref.files if k.startswith(prefix)}


def tfhub_variables(sd: dict, shared_dim: int) -> dict:
  """BigGAN-PyTorch G state dict -> the v1 module's variables."""
  rng = np.random.default_rng(0)
  out = {}

  def put(scope, w=None, b=None, u0=None, conv=False, raw=True):
    if w is not None:
      out[f'{scope}/w/{EMA}'] = w.transpose(2, 3, 1, 0) if conv else w.T
      if raw:
        out[f'{scope}/w'] = out[f'{scope}/w/{EMA}'] + 1  # the raw weights: not to be read
    if b is not None:
      out[f'{scope}/b/{EMA}'] = b
    if u0 is not None:
      out[f'{scope}/u0'] = u0
      out[f'{scope}/u1'] = rng.normal(size=u0.shape).astype(np.float32)

  def stats(scope, bn, counter):
    out[f'{scope}/accumulated_mean'] = sd[f'{bn}.stored_mean']
    out[f'{scope}/accumulated_var'] = sd[f'{bn}.stored_var']
    out[f'{scope}/accumulation_counter'] = np.float32(counter)

  out[f'linear/w/{EMA}'] = sd['shared.weight']  # (classes, 128): applied to one-hot y
  w, b, u0 = sd['linear.weight'], sd['linear.bias'], sd['linear.u0']
  c0 = w.shape[0] // 16
  nhwc = lambda x: x.reshape(c0, 16, *x.shape[1:]).swapaxes(0, 1).reshape(x.shape)
  put('Generator/G_Z/G_linear', nhwc(w), nhwc(b), nhwc(u0.T).T)
  blocks = sorted({int(k.split('.')[1]) for k in sd if k.startswith('blocks.')})
  for i in blocks:
    scope, src = f'Generator/GBlock_{i}' if i else 'Generator/GBlock', f'blocks.{i}.0'
    for ours, theirs in (('conv1', 'conv0'), ('conv2', 'conv1'), ('conv_sc', 'conv_sc')):
      put(f'{scope}/{theirs}', sd[f'{src}.{ours}.weight'], sd[f'{src}.{ours}.bias'],
          sd[f'{src}.{ours}.u0'], conv=True)
    for k, hyper in ((1, 'HyperBN'), (2, 'HyperBN_1')):
      for ours, theirs in (('gain', 'gamma'), ('bias', 'beta')):
        w = sd[f'{src}.bn{k}.{ours}.weight']  # (C, [y, z]) -> TF's (z + y, C)
        put(f'{scope}/{hyper}/{theirs}', np.concatenate([w[:, shared_dim:], w[:, :shared_dim]],
                                                        1), u0=sd[f'{src}.bn{k}.{ours}.u0'])
      stats(f'{scope}/{hyper.replace("HyperBN", "CrossReplicaBN")}', f'{src}.bn{k}', 7 + i)
    if f'blocks.{i}.1.gamma' in sd:
      for ours, theirs in (('theta', 'theta'), ('phi', 'phi'), ('g', 'g'), ('o', 'o_conv')):
        put(f'Generator/attention/{theirs}', sd[f'blocks.{i}.1.{ours}.weight'],
            u0=sd[f'blocks.{i}.1.{ours}.u0'], conv=True)
      out[f'Generator/attention/gamma/{EMA}'] = sd[f'blocks.{i}.1.gamma'].reshape(())
  out[f'Generator/ScaledCrossReplicaBN/gamma/{EMA}'] = sd['output_layer.0.gain']
  out[f'Generator/ScaledCrossReplicaBN/beta/{EMA}'] = sd['output_layer.0.bias']
  stats('Generator/ScaledCrossReplicaBNbn', 'output_layer.0', 3)
  put('Generator/conv_2d', sd['output_layer.2.weight'], sd['output_layer.2.bias'],
      sd['output_layer.2.u0'], conv=True)
  return out


@pytest.fixture(scope='module')
def module(ref, tmp_path_factory):
  variables = tfhub_variables(fixture_state_dict(ref), shared_dim=8)
  folder = tmp_path_factory.mktemp('tfhub_v1') / 'biggan-tiny64'
  write_variables(folder, variables, prefix='module/')
  (folder / 'saved_model.pb').write_bytes(b'')
  (folder / 'tfhub_module.pb').write_bytes(b'')
  return folder, variables


def test_state_dict_is_biggan_pytorchs(ref, module):
  """The renamed variables are exactly upstream's state dict (sv0 aside: TF has none)."""
  variables = module[1]
  arch = tfhub_v1.architecture(variables)
  assert arch == dict(resolution=64, num_blocks=4, ch=4, dim_z=20, z_chunk=4, shared_dim=8,
                      num_classes=5, attention=32)
  ours, theirs = tfhub_v1.to_state_dict(variables, arch), fixture_state_dict(ref)
  assert ours.keys() == theirs.keys()
  for name, value in theirs.items():
    if not name.endswith('.sv0'):
      np.testing.assert_array_equal(ours[name], value, err_msg=name)
  assert tfhub_v1.counters(variables) == [3.0, 7.0, 8.0, 9.0, 10.0]


def test_converted_module_samples_as_its_weights_do(ref, module, tmp_path):
  """CLI path end to end. The reference is the same weights through the BigGAN-PyTorch
  mapping (tests/convert/test_biggan_pytorch.py: equal to upstream) at the modules' eps."""
  out = tmp_path / 'converted'
  meta = convert.convert('tfhub', str(module[0]), str(out))
  assert (meta['source'], meta['truncation_convention'], meta['tfhub_module']) == (
      'tfhub', 'paper', 'BigGAN')
  m = meta['model']
  assert (m['family'], m['resolution'], m['ch'], m['dim_z'], m['shared_dim'], m['g_attn'],
          m['hierarchical_z']) == ('biggan', 64, 4, 20, 8, '32', True)
  assert m['bn_eps'] == m['sn_eps'] == m['output_bn_eps'] == 1e-4
  assert meta['bn_accumulation_counters'] == [3.0, 7.0, 8.0, 9.0, 10.0]
  cfg = {**eval(str(ref['config']), {}), 'BN_eps': 1e-4, 'SN_eps': 1e-4}
  reference_model = bp.model_config_from_pytorch(cfg)
  reference_model.output_bn_eps = 1e-4
  G = models.create_generator(reference_model)
  z, y = ref['z'].astype(np.float32), ref['y'].astype(np.int32)
  variables = bp.to_variables(fixture_state_dict(ref), bp.expected_variables(G, z, y),
                              generator=True)
  want = np.asarray(jax.jit(lambda v: G.apply(v, z, y, train=False))(variables))
  got = biggan_jax.load_generator(out).sample(y, z=z)
  err = float(np.abs(got - want).max() / np.abs(want).max())
  print(f'TF-Hub v1 layout -> converted G: rel err {err:.1e}')
  assert np.abs(want).std() > 0.05 and err <= 1e-4
  assert checkpoint_dir.read_meta(out)['has_discriminator'] is False


def test_missing_variable_is_one_line(module, tmp_path, capsys):
  variables = {k: v for k, v in module[1].items() if k != f'Generator/GBlock_1/conv0/w/{EMA}'}
  folder = tmp_path / 'partial'
  write_variables(folder, variables)
  out = tmp_path / 'out'
  code = convert_main.main(['convert', '--source=tfhub', f'--input={folder}', f'--output={out}'])
  assert code == 2
  one_error_line(capsys, "no 'Generator/GBlock_1/conv0/w/ema_b999900'",
                 'TF-Hub BigGAN (deepmind/biggan-128/256/512) module')
  assert not out.exists()
