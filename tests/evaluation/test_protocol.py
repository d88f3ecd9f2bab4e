"""Evaluation: evaluate_sampler against the metrics computed by hand, the CLI and its
protocol, and evaluation during training (metrics rows, best_fid, D overfitting).

The metric plumbing is tested with tests/stand_in_extractor.py's stand-in for the
Inception. The real FID Inception with random weights runs in test_paper_figures.py's
Inception-space nearest neighbours, and against pytorch-fid in test_inception.py.
"""

import hashlib
import json

import jax
import numpy as np
import pytest

import biggan_jax
from biggan_jax import config as config_lib
from biggan_jax import evaluate
from biggan_jax.checkpoints import best_fid
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.data import fake
from biggan_jax.evaluation import metrics, protocol, stats as stats_lib
from biggan_jax.training import loop
from paths import REPO
from stand_in_extractor import ProjectionExtractor

R = 16
FIDS = [5.0, 7.0, 3.0]  # the FID each eval of the training run reports.


def tiny_config(**overrides):
  config = config_lib.from_file(REPO / 'configs' / 'tiny.py', **overrides)
  config.model.resolution = R
  config.model.g_attn = config.model.d_attn = ''
  return config


@pytest.fixture(scope='module')
def ref_path(tmp_path_factory):
  """Reference stats of 'fake' training images with labels (per-class stats too)."""
  config = tiny_config(batch_size=40)
  batch = fake.fake_batch(config, 0, 0, 1)
  images, labels = batch['image'][0, 0], batch['label'][0, 0]
  stats = stats_lib.FeatureStats(100)
  stats.update(ProjectionExtractor()(images)['pool'], labels)
  path = tmp_path_factory.mktemp('ref') / 'ref.npz'
  stats_lib.save_stats(str(path), stats, {'source': 'fake'})
  return path


@pytest.fixture(scope='module')
def run(tmp_path_factory, ref_path):
  """3 steps, an eval after each; the FIDs it sees are FIDS (the rest is real)."""
  config = tiny_config(total_steps=3, checkpoint_every=3, sample_every=0,
                       num_d_steps=1, num_standing_stats=1, eval_every=1,
                       eval_num_samples=12, eval_batch_size=12,
                       eval_ref_stats=str(ref_path), eval_heldout_split='test')
  config_lib.validate(config)
  workdir = tmp_path_factory.mktemp('run')
  fids, saved, real_fids = iter(FIDS), [], []
  real_evaluate, real_save = protocol.evaluate_sampler, best_fid.BestFid.maybe_save

  def evaluate_with_fids(*args, **kwargs):
    result = real_evaluate(*args, **kwargs)
    real_fids.append(result['fid'])
    return {**result, 'fid': next(fids)}

  def recording_save(self, step, *args):
    done = real_save(self, step, *args)
    if done:
      saved.append(step)
    return done

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(protocol, 'make_extractor', lambda *args: ProjectionExtractor())
    patch.setattr(protocol, 'evaluate_sampler', evaluate_with_fids)
    patch.setattr(best_fid.BestFid, 'maybe_save', recording_save)
    loop.train_and_evaluate(config, str(workdir))
  return workdir, saved, real_fids


# ---------------------------------------------------------------- the library

class Recording:
  """A Sampler that records the classes it was asked for."""

  def __init__(self, sampler):
    self.sampler, self.num_classes, self.labels = sampler, sampler.num_classes, []

  def sample(self, labels, **kwargs):
    self.labels.append(np.asarray(labels))
    return self.sampler.sample(labels, **kwargs)


def test_metrics_equal_those_computed_by_hand(run, ref_path):
  sampler = Recording(biggan_jax.load_generator(run[0]))
  extractor = ProjectionExtractor()
  result = protocol.evaluate_sampler(sampler, num_samples=30, ref_stats=str(ref_path),
                                     extractor=extractor, batch_size=8, truncation=1.0,
                                     seed=3)
  pool = np.concatenate([o['pool'] for o in extractor.outputs])
  logits = np.concatenate([o['logits'] for o in extractor.outputs])
  labels = np.concatenate(sampler.labels)
  assert pool.shape == (30, 16) and [len(l) for l in sampler.labels] == [8, 8, 8, 6]
  # Uniform classes: 30 images over 5 classes, 6 each.
  np.testing.assert_array_equal(np.bincount(labels, minlength=5), [6] * 5)
  ref = stats_lib.load_stats(str(ref_path))
  by_hand = {
      'fid': metrics.frechet_distance(pool.mean(0), np.cov(pool, rowvar=False), ref.mu,
                                      ref.sigma),
      'intra_fid': np.mean([metrics.frechet_distance(
          pool[labels == c].mean(0), np.cov(pool[labels == c], rowvar=False),
          ref.per_class[c].mu, ref.per_class[c].sigma) for c in range(5)]),
  }
  by_hand['is_mean'], by_hand['is_std'] = metrics.inception_score(logits, 10)
  by_hand['precision'], by_hand['recall'] = metrics.precision_recall(ref.features, pool, 3)
  by_hand['density'], by_hand['coverage'] = metrics.density_coverage(ref.features, pool, 5)
  for key, value in by_hand.items():
    assert np.isfinite(result[key]), key
    assert result[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
  assert result['fid'] > 0 and result['is_mean'] > 1
  assert result['num_samples'] == 30


def test_same_seed_same_numbers_and_a_sampling_function(ref_path):
  def generate(labels, seed):
    rng = np.random.default_rng(seed)
    base = (labels[:, None, None, None] / 4.0 - 0.5).astype(np.float32)
    return np.clip(base + 0.3 * rng.standard_normal((len(labels), R, R, 3)), -1, 1)

  kwargs = dict(num_samples=20, ref_stats=str(ref_path), batch_size=7, num_classes=5)
  a = protocol.evaluate_sampler(generate, extractor=ProjectionExtractor(), seed=1, **kwargs)
  b = protocol.evaluate_sampler(generate, extractor=ProjectionExtractor(), seed=1, **kwargs)
  c = protocol.evaluate_sampler(generate, extractor=ProjectionExtractor(), seed=2, **kwargs)
  assert a['fid'] == b['fid'] and a['is_mean'] == b['is_mean']
  assert a['fid'] != c['fid']
  with pytest.raises(ValueError, match='16-d'):
    protocol.evaluate_sampler(generate, extractor=lambda x: {'pool': np.zeros((len(x), 3)),
                                                             'logits': np.zeros((len(x), 2))},
                              seed=1, **kwargs)


def test_a_pytorch_fid_reference_gives_fid_only(ref_path, tmp_path):
  ref = stats_lib.load_stats(str(ref_path))
  plain = tmp_path / 'plain.npz'
  np.savez(plain, mu=ref.mu, sigma=ref.sigma)
  result = protocol.evaluate_sampler(
      lambda y, seed: np.zeros((len(y), R, R, 3), np.float32) + y[:, None, None, None] / 5,
      num_samples=10, ref_stats=str(plain), extractor=ProjectionExtractor(), num_classes=5)
  assert np.isfinite(result['fid'])
  assert result['precision'] is result['density'] is result['intra_fid'] is None


# ------------------------------------------------------------------- the CLI

def run_cli(capsys, *args):
  code = evaluate.main(['evaluate', *args])
  out, err = capsys.readouterr()
  return code, out, err


def test_cli_writes_metrics_and_protocol(run, ref_path, tmp_path, capsys, monkeypatch):
  weights = tmp_path / 'weights.pth'
  weights.write_bytes(b'not really inception')
  monkeypatch.setattr(protocol, 'make_extractor',
                      lambda weights, batch_size, resize: ProjectionExtractor(weights, batch_size))
  out = tmp_path / 'metrics.json'
  args = [f'--checkpoint={run[0]}', f'--ref_stats={ref_path}', '--num_samples=20',
          '--truncation=0.5', f'--weights={weights}', '--batch_size=10', f'--output={out}']
  code, stdout, err = run_cli(capsys, *args)
  assert code == 0, err
  doc = json.loads(out.read_text())
  for key in ('fid', 'kid_mean', 'kid_std', 'is_mean', 'is_std', 'precision', 'recall',
              'density', 'coverage', 'intra_fid'):
    assert np.isfinite(doc[key]), key
  assert doc['kid_subset_size'] == 20  # min(1000, the 20 samples, the 40 reference rows)
  p = doc['protocol']
  assert (p['resize'], p['kid_subsets'], p['kid_seed']) == ('pytorch-fid', 100, 2020)
  assert p['inception_weights'] == str(weights)
  assert p['inception_weights_sha256'] == hashlib.sha256(weights.read_bytes()).hexdigest()[:8]
  assert (p['num_samples'], p['truncation'], p['truncation_convention']) == (20, 0.5, 'paper')
  assert p['ref_stats'] == str(ref_path) and p['ref_num_images'] == 40
  assert p['seed'] == 0 and p['step'] == 3 and p['date'].startswith('20')
  assert f'FID {doc["fid"]:.4g}' in stdout
  # Nothing is overwritten without --overwrite; with it the numbers repeat.
  code, _, err = run_cli(capsys, *args)
  assert code == 2 and 'exists' in err and len(err.strip().splitlines()) == 1
  code, _, err = run_cli(capsys, *args, '--overwrite')
  assert code == 0, err
  assert json.loads(out.read_text())['fid'] == doc['fid']


@pytest.mark.parametrize('change, message', [
    ({'ref_stats': 'missing.npz'}, 'no such file'),
    ({'checkpoint': 'not_a_checkpoint'}, 'no such checkpoint directory'),
    ({'truncation': '0'}, 'truncation=0'),
    ({'truncation': '-1'}, 'truncation=-1'),
    ({'num_samples': '5'}, 'at least 10'),
    ({'resize': 'clean'}, "statistics of 'pytorch-fid'-resized images"),
])
def test_cli_errors_are_one_line(run, ref_path, tmp_path, capsys, change, message):
  flags = {'checkpoint': str(run[0]), 'ref_stats': str(ref_path), 'num_samples': '20',
           'output': str(tmp_path / 'm.json')}
  flags.update({k: str(tmp_path / v) if k in ('ref_stats', 'checkpoint') else v
                for k, v in change.items()})
  code, _, err = run_cli(capsys, *[f'--{k}={v}' for k, v in flags.items()])
  assert code == 2
  assert err.startswith('error: ') and message in err and len(err.strip().splitlines()) == 1
  assert not (tmp_path / 'm.json').exists()


# ------------------------------------------------------------ during training

def test_training_logs_eval_rows(run):
  workdir, _, real_fids = run
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  evals = [r for r in rows if 'fid' in r]
  assert [r['step'] for r in evals] == [1, 2, 3]
  assert [r['fid'] for r in evals] == FIDS
  assert len(real_fids) == 3 and all(np.isfinite(f) and f > 0 for f in real_fids)
  for r in evals:
    for key in ('is_mean', 'is_std', 'precision', 'recall', 'd_train', 'd_heldout'):
      assert np.isfinite(r[key]), key
    assert r['d_gap'] == pytest.approx(r['d_train'] - r['d_heldout'])
  assert (workdir / 'd_overfit.png').stat().st_size > 1000
  events = list(workdir.glob('events.out.tfevents.*'))
  assert events  # TensorBoard gets the same scalars through the same writer.


def test_best_fid_is_kept_only_when_improved(run):
  workdir, saved, _ = run
  assert saved == [1, 3]  # FIDs 5, 7, 3: the first, then the better one.
  assert sorted(p.name for p in (workdir / 'best_fid').iterdir() if p.name.isdigit()) == ['3']
  sampler = biggan_jax.load_generator(workdir / 'best_fid')
  assert sampler.meta['step'] == 3 and sampler.meta['fid'] == 3.0
  assert sampler.meta['eval_num_samples'] == 12
  # The EMA G that was evaluated at step 3: the rolling checkpoint's, bit for bit.
  _, rolling = run_checkpoints.restore_ema_generator(str(workdir / 'checkpoints'), 3)
  for a, b in zip(jax.tree.leaves(sampler.variables), jax.tree.leaves(rolling)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_best_fid_reads_the_best_back_and_never_goes_back(tmp_path):
  variables = {'params': {'w': np.arange(3, dtype=np.float32)}}
  best = best_fid.BestFid(tmp_path / 'best_fid')
  assert best.fid == float('inf') and not (tmp_path / 'best_fid').exists()
  assert best.maybe_save(10, 4.0, variables, {'kind': 'biggan_jax.train'})
  best.wait_until_finished()
  again = best_fid.BestFid(tmp_path / 'best_fid')  # a resumed run
  assert (again.step, again.fid) == (10, 4.0)
  assert not again.maybe_save(12, 4.5, variables, {})
  assert not again.maybe_save(8, 1.0, variables, {})  # an older step
  assert not again.maybe_save(14, float('nan'), variables, {})
  assert again.maybe_save(14, 2.0, variables, {})
  again.wait_until_finished()
  assert sorted(p.name for p in (tmp_path / 'best_fid').iterdir()) == ['14']


def test_config_needs_reference_stats_with_eval_every():
  config = tiny_config(eval_every=5)
  with pytest.raises(config_lib.ConfigError, match='eval_ref_stats'):
    config_lib.validate(config)
  config.eval_ref_stats = 'ref.npz'
  config.eval_num_samples = 5
  with pytest.raises(config_lib.ConfigError, match='eval_num_samples=5'):
    config_lib.validate(config)
