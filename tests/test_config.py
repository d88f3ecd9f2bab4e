"""Every configs/*.py loads and validates; every bad value is named in one line."""

import os

import jax
import pytest

from biggan_jax import config as config_lib
from biggan_jax.models import architectures

from paths import CONFIG_FILES, REPO, load_config


def tiny_config():
  return load_config(os.path.join(REPO, 'configs', 'tiny.py'))


def set_d_ch(config, value):
  """Gives D its own width (0 means: the same as model.ch)."""
  config.model.d_ch = value


def test_the_expected_configs_exist():
  names = {os.path.basename(p) for p in CONFIG_FILES}
  assert names == {'cifar10.py', 'imagenet128.py', 'imagenet256.py', 'imagenet512.py',
                   'imagenet128_deep.py', 'imagenet256_deep.py', 'imagenet512_deep.py',
                   'tiny.py', 'digits.py'}


@pytest.mark.parametrize('path', CONFIG_FILES, ids=os.path.basename)
def test_config_loads_and_validates(path, monkeypatch):
  # Each config is meant for its own hardware; the suite runs on 8 fake devices.
  monkeypatch.setattr(jax, 'device_count', lambda: 1)
  config = load_config(path)
  config_lib.validate(config)
  assert set(config.keys()) == set(config_lib.base_config().keys())
  doc = open(path).read()
  assert f'python -m biggan_jax.main --config=configs/{os.path.basename(path)}' in doc


def test_paper_configs_match_the_paper():
  i128 = load_config(os.path.join(REPO, 'configs', 'imagenet128.py'))
  assert (i128.model.ch, i128.model.dim_z, i128.model.shared_dim) == (96, 120, 128)
  assert (i128.batch_size, i128.num_d_steps, i128.lr_g, i128.lr_d) == (2048, 2, 5e-5, 2e-4)
  assert (i128.ortho_beta, i128.ema_decay) == (1e-4, 0.9999)
  deep = load_config(os.path.join(REPO, 'configs', 'imagenet256_deep.py'))
  assert (deep.model.family, deep.model.ch, deep.model.g_depth, deep.model.d_depth) == (
      'biggan_deep', 128, 2, 2)
  tiny = tiny_config()
  assert architectures.num_z_slots(tiny.model.resolution) == 4
  assert tiny.model.dim_z // 4 == 4


def test_tiny_validates_on_the_test_devices():
  config_lib.validate(tiny_config())  # batch 8 over the 8 fake CPU devices.


def _set(key, value):
  def apply(config):
    node = config
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return apply


def _deep(resolution):
  return lambda c: (_set('model.family', 'biggan_deep')(c),
                    _set('model.resolution', resolution)(c))


# (what to change, substrings the one-line message must hold).
INVALID = {
    'family': (_set('model.family', 'stylegan'), ["model.family='stylegan'", "'biggan_deep'"]),
    'resolution': (_set('model.resolution', 100), ['model.resolution=100', '512']),
    'deep_resolution_16': (_deep(16), ['model.resolution=16', "'biggan_deep'", '32, 64']),
    'init': (_set('model.init', 'kaiming'), ["model.init='kaiming'", "'ortho'"]),
    'dtype': (_set('model.dtype', 'float16'), ["model.dtype='float16'", "'bfloat16'"]),
    'loss': (_set('loss', 'lsgan'), ["loss='lsgan'", "'hinge'"]),
    'ch': (_set('model.ch', 0), ['model.ch=0', 'positive']),
    'd_ch': (lambda c: set_d_ch(c, -1), ['model.d_ch=-1', '>= 0']),
    'dim_z': (_set('model.dim_z', 0), ['model.dim_z=0', 'positive']),
    'shared_dim': (_set('model.shared_dim', 0), ['model.shared_dim=0', 'positive']),
    'num_classes': (_set('model.num_classes', -5), ['model.num_classes=-5', 'positive']),
    'g_attn_below_8': (_set('model.g_attn', '4'), ["model.g_attn='4'", '4x4', '8, 16, 32']),
    'g_attn_above_resolution': (_set('model.g_attn', '16_64'), ["model.g_attn='16_64'", '64x64']),
    'g_attn_not_a_number': (_set('model.g_attn', 'x64'), ["model.g_attn='x64'", "'32_64'"]),
    'd_attn_at_resolution': (_set('model.d_attn', '32'), ["model.d_attn='32'", '32x32', '8, 16']),
    'd_attn_4_in_32_d': (_set('model.d_attn', '4'), ["model.d_attn='4'", '4x4', '8, 16']),
    'g_attn_too_narrow': (_set('model.ch', 1), ["model.g_attn='16'", 'model.ch >= 2', 'C/8']),
    'd_attn_too_narrow': (lambda c: set_d_ch(c, 1), ["model.d_attn='16'", 'model.d_ch >= 2']),
    'hierarchical_z': (_set('model.dim_z', 3), ['model.dim_z=3', '4 chunks', 'model.dim_z >= 4']),
    'g_depth': (lambda c: (_deep(32)(c), _set('model.g_depth', 0)(c)), ['model.g_depth=0']),
    'accumulations': (_set('num_accumulations', 3), ['batch_size=8', 'num_accumulations=3']),
    'accumulations_word': (_set('num_accumulations', 'some'), ["num_accumulations='some'",
                                                               'positive integer']),
    'num_d_steps': (_set('num_d_steps', 0), ['num_d_steps=0']),
    'ema_decay_1': (_set('ema_decay', 1.0), ['ema_decay=1.0', '[0, 1)']),
    'ema_decay_negative': (_set('ema_decay', -0.5), ['ema_decay=-0.5', '[0, 1)']),
    'lr_g': (_set('lr_g', 0.0), ['lr_g=0.0', '> 0']),
    'lr_d': (_set('lr_d', -1e-4), ['lr_d=-0.0001', '> 0']),
    'r1_gamma': (_set('r1_gamma', -1.0), ['r1_gamma=-1.0', '>= 0']),
    'mode_seeking': (_set('mode_seeking', -1.0), ['mode_seeking=-1.0', '>= 0']),
    'ortho_beta': (_set('ortho_beta', -1e-4), ['ortho_beta=-0.0001', '>= 0']),
    'r1_every_without_r1': (_set('r1_every', 16), ['r1_every=16', '--config.r1=True']),
    'r1_every_zero': (lambda c: (_set('r1', True)(c), _set('r1_every', 0)(c)), ['r1_every=0']),
    'ema_rampup': (_set('ema_rampup', -0.05), ['ema_rampup=-0.05', '>= 0']),
    'ada_without_augment': (_set('augment_adaptive', True), ['augment_adaptive=True',
                                                             '--config.augment']),
    'ada_target': (lambda c: (_set('augment', 'translation')(c), _set('ada_target', 1.0)(c),
                              _set('augment_adaptive', True)(c)), ['ada_target=1.0', '(0, 1)']),
    'unshared_with_hierarchical_z': (_set('model.shared_embedding', False),
                                     ['model.shared_embedding=False', 'hierarchical_z=False']),
    'unshared_deep': (lambda c: (_deep(32)(c), _set('model.hierarchical_z', False)(c),
                                 _set('model.shared_embedding', False)(c)),
                      ['model.shared_embedding=False', "model.family='biggan'"]),
    # Loop fields: each of these used to run (or crash after compiling) instead.
    'total_steps': (_set('total_steps', 0), ['total_steps=0', 'positive']),
    'checkpoint_every': (_set('checkpoint_every', 0), ['checkpoint_every=0', 'positive']),
    'max_to_keep': (_set('max_to_keep', 0), ['max_to_keep=0', 'positive']),
    'log_every': (_set('log_every', -1), ['log_every=-1', 'positive']),
    'sv_every': (_set('sv_every', 0), ['sv_every=0', 'positive']),
    'sample_every': (_set('sample_every', -2), ['sample_every=-2', '>= 0']),
    'num_standing_stats': (_set('num_standing_stats', 0), ['num_standing_stats=0']),
    'guard_remedy': (_set('collapse_guard.remedy', 'pray'),
                     ["collapse_guard.remedy='pray'", "'lower_lr'"]),
    'guard_growth': (_set('collapse_guard.sigma0_growth', 1.0),
                     ['collapse_guard.sigma0_growth=1.0', '> 1']),
    'guard_rollback_needs_2': (lambda c: (_set('collapse_guard.remedy', 'lower_lr')(c),
                                          _set('max_to_keep', 1)(c)),
                               ['max_to_keep=1', "remedy='lower_lr'", 'at least 2']),
    'sigma0_ratio': (_set('sigma0_ratio', 0.5), ['sigma0_ratio=0.5', '>= 1']),
    'sigma0_nets': (_set('sigma0_nets', 'E'), ["sigma0_nets='E'", "'G,D'"]),
    'sigma0_penalty': (_set('sigma0_penalty', -1.0), ['sigma0_penalty=-1.0', '>= 0']),
}


@pytest.mark.parametrize('case', sorted(INVALID))
def test_invalid_value_is_named(case):
  change, expected = INVALID[case]
  config = tiny_config()  # valid: resolution 32, ch 4, dim_z 16, attention 16, batch 8.
  change(config)
  with pytest.raises(config_lib.ConfigError) as error:
    config_lib.validate(config)
  message = str(error.value)
  assert '\n' not in message
  for text in expected:
    assert text in message


def test_batch_must_split_over_the_devices(monkeypatch):
  monkeypatch.setattr(jax, 'device_count', lambda: 3)
  config = tiny_config()
  config.num_accumulations = 2
  with pytest.raises(config_lib.ConfigError) as error:
    config_lib.validate(config)
  assert str(error.value) == (
      'batch_size=8: each of the num_accumulations=2 micro-batches holds 4 examples, which '
      'does not split over the 3 devices (jax.device_count()=3); use a batch_size '
      'divisible by 6')


def test_auto_accumulations_need_the_batch_to_split_over_the_devices(monkeypatch):
  monkeypatch.setattr(jax, 'device_count', lambda: 3)
  config = tiny_config()
  config.num_accumulations = 'auto'
  with pytest.raises(config_lib.ConfigError, match='divisible by 3$'):
    config_lib.validate(config)
  config.batch_size = 12
  config_lib.validate(config)
  assert config_lib.accumulation_candidates(config, 3) == [1, 2, 4]
  config.mode_seeking = 1.0  # pairs the halves of each micro-batch
  assert config_lib.accumulation_candidates(config, 3) == [1, 2]


def test_num_accumulations_takes_a_number_or_auto_from_the_command_line(tmp_path, capsys):
  from biggan_jax import main
  from cli_checks import run_main
  for value, parsed in (('auto', 'auto'), ('2', 2)):
    assert run_main(f'--config={REPO / "configs" / "tiny.py"}', f'--workdir={tmp_path}',
                    '--config.batch_size=16', f'--config.num_accumulations={value}',
                    '--dry_run') == 0
    assert main.FLAGS.config.num_accumulations == parsed
  out = capsys.readouterr().out
  assert 'batch: 16 per update num_accumulations=auto: the fewest micro-batches' in out
  assert 'batch: 16 per update = 2 x 8 (num_accumulations x micro-batch)' in out
  for path in sorted((REPO / 'configs').glob('imagenet*.py')):
    assert config_lib.from_file(path).num_accumulations == 'auto', path.name


def test_hierarchical_z_is_not_checked_without_it_or_for_deep():
  config = tiny_config()
  config.model.dim_z = 3
  config.model.hierarchical_z = False
  config_lib.validate(config)
  _deep(32)(config)
  config.model.hierarchical_z = True
  config_lib.validate(config)  # BigGAN-deep feeds the whole z to every block.
