"""Metrics on cases with known answers, and against the reference code where it is importable."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from biggan_jax.evaluation import image_folder, metrics, stats as stats_lib
from pytorch_fid_shim import import_reference


def _spd(rng, d, scale=1.0):
  a = rng.normal(size=(d, 2 * d))
  return scale * a @ a.T / (2 * d)


# ---------------------------------------------------------------------------
# FID and IS.
# ---------------------------------------------------------------------------

def test_frechet_distance_closed_forms():
  rng = np.random.default_rng(0)
  mu, sigma = rng.normal(size=16), _spd(rng, 16)
  assert abs(metrics.frechet_distance(mu, sigma, mu, sigma)) < 1e-9
  shift = rng.normal(size=16)
  assert metrics.frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(
      shift @ shift, rel=1e-8)
  # Diagonal covariances: Tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (s1 - s2)^2 over the stds.
  s1, s2 = rng.uniform(0.5, 2, 16), rng.uniform(0.5, 2, 16)
  expected = shift @ shift + np.sum((s1 - s2) ** 2)
  assert metrics.frechet_distance(mu, np.diag(s1 ** 2), mu + shift, np.diag(s2 ** 2)) == (
      pytest.approx(expected, rel=1e-10))
  with pytest.raises(ValueError, match='different dimensions: 16 and 8'):
    metrics.frechet_distance(mu, sigma, mu[:8], sigma[:8, :8])


def test_frechet_distance_matches_pytorch_fid():
  from inception_fixture import pytorch_fid_inception
  pytorch_fid_inception()
  from pytorch_fid import fid_score
  rng = np.random.default_rng(1)
  for n in (200, 12):  # full-rank covariances, then rank-deficient ones (11 < 64).
    a, b = rng.normal(size=(n, 64)), rng.normal(0.3, 1.2, size=(n, 64))
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    ours, theirs = metrics.frechet_distance(*args), fid_score.calculate_frechet_distance(*args)
    assert ours == pytest.approx(theirs, rel=1e-12), n


def test_inception_score():
  mean, std = metrics.inception_score(np.zeros((50, 1008)), num_splits=10)
  assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
  # Confident, and uniform over 10 classes in every split: IS = 10.
  logits = np.zeros((100, 1008))
  logits[np.arange(100), np.arange(100) % 10 * 7] = 100.0
  mean, std = metrics.inception_score(logits, num_splits=10)
  assert mean == pytest.approx(10.0, rel=1e-9) and std < 1e-9
  # Random logits: BigGAN-PyTorch's inception_tf13.py formula, written out.
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (103, 1008))
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  scores = []
  for i in range(4):
    part = p[i * 103 // 4:(i + 1) * 103 // 4]
    kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
    scores.append(np.exp(kl.sum(1).mean()))
  mean, std = metrics.inception_score(logits, num_splits=4)
  assert mean == pytest.approx(np.mean(scores), rel=1e-12)
  assert std == pytest.approx(np.std(scores), rel=1e-9)
  assert mean > 1.5
  with pytest.raises(ValueError, match='splits'):
    metrics.inception_score(logits[:3], num_splits=10)


# ---------------------------------------------------------------------------
# FeatureStats.
# ---------------------------------------------------------------------------

def test_streaming_stats_equal_batch_statistics():
  rng = np.random.default_rng(0)
  x = (rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16)) + 1e4).astype(np.float32)
  labels = rng.integers(0, 3, 500)
  stats = stats_lib.FeatureStats(max_features=50)
  for start, stop in [(0, 7), (7, 100), (100, 101), (101, 500)]:  # folds at 32 rows
    stats.update(x[start:stop], labels[start:stop])
  x64 = x.astype(np.float64)
  assert stats.num == 500
  np.testing.assert_allclose(stats.mu, x64.mean(0), rtol=1e-14)
  cov = np.cov(x64, rowvar=False)
  assert np.abs(stats.sigma - cov).max() < 1e-9 * np.abs(cov).max()
  assert sorted(stats.per_class) == [0, 1, 2]
  for c, s in stats.per_class.items():
    assert s.num == (labels == c).sum()
    np.testing.assert_allclose(s.sigma, np.cov(x64[labels == c], rowvar=False),
                               rtol=1e-8, atol=1e-9 * np.abs(cov).max())
  # The kept 50 are input rows with their labels, drawn from the whole stream.
  kept = stats.features
  assert kept.shape == (50, 16)
  rows = [int(np.flatnonzero((x == f).all(1))[0]) for f in kept]
  assert len(set(rows)) == 50
  np.testing.assert_array_equal(stats.labels, labels[rows])
  assert np.mean(rows) > 150 and max(rows) > 400


def test_per_class_stats_keep_at_most_max_per_class_rows():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(60, 4)).astype(np.float32)
  labels = np.repeat([0, 1], [50, 10])
  stats = stats_lib.FeatureStats(max_per_class=8)
  for start in range(0, 60, 7):
    stats.update(x[start:start + 7], labels[start:start + 7])
  big, small = stats.per_class[0], stats.per_class[1]
  assert (big.num, len(big.features), small.num, len(small.features)) == (50, 8, 10, 8)
  rows = [int(np.flatnonzero((x == f).all(1))[0]) for f in big.features]
  assert len(set(rows)) == 8 and set(labels[rows]) == {0} and max(rows) >= 8
  np.testing.assert_allclose(big.sigma, np.cov(x[rows].astype(np.float64), rowvar=False),
                             rtol=1e-12)
  np.testing.assert_allclose(big.mu, x[rows].astype(np.float64).mean(0), rtol=1e-12)
  assert stats_lib.FeatureStats(max_per_class=0).per_class == {}
  no_classes = stats_lib.FeatureStats(max_per_class=0)
  no_classes.update(x, labels)
  assert no_classes.per_class == {} and no_classes.num == 60
  with pytest.raises(ValueError, match='max_per_class=1'):
    stats_lib.FeatureStats(max_per_class=1)


def test_feature_stats_small_and_bad_input():
  stats = stats_lib.FeatureStats()
  x = np.arange(12, dtype=np.float32).reshape(4, 3)
  stats.update(x)
  np.testing.assert_array_equal(stats.features, x)  # fewer than max_features: all, in order.
  assert stats.labels is None and stats.per_class == {}
  with pytest.raises(ValueError, match='with every batch or with none'):
    stats.update(x, np.zeros(4, int))
  with pytest.raises(ValueError, match=r'expected \(n, 3\)'):
    stats.update(np.zeros((2, 5)))
  with pytest.raises(ValueError, match='at least 2'):
    one = stats_lib.FeatureStats()
    one.update(x[:1])
    _ = one.sigma
  with pytest.raises(ValueError, match='one integer class per row'):
    stats_lib.FeatureStats().update(x, np.zeros(4))


def test_intra_fid():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(60, 4)).astype(np.float32)
  labels = np.repeat([0, 1, 2], 20)
  shift = np.float32([1, 2, 0, 0])
  fake_x = x + np.where(labels[:, None] == 1, shift, 0).astype(np.float32)
  real, fake = stats_lib.FeatureStats(), stats_lib.FeatureStats()
  real.update(x, labels)
  fake.update(fake_x[labels < 2], labels[labels < 2])  # class 2: real only, not counted.
  assert metrics.intra_fid(real, fake) == pytest.approx(5.0 / 2, rel=1e-5)
  assert metrics.intra_fid(real.per_class, fake.per_class) == pytest.approx(2.5, rel=1e-5)
  with pytest.raises(ValueError, match='no class'):
    metrics.intra_fid({0: real.per_class[0]}, {1: fake.per_class[1]})


# ---------------------------------------------------------------------------
# Precision/recall, density/coverage.
# ---------------------------------------------------------------------------

def _clouds():
  """Point clouds whose k-NN balls are known exactly, with wide margins (no ties).

  real: 8 clusters of 6 points (centre +- e1, e2, e3): 4 clusters "A" at
  10 m e4, 4 "B" 100 away. Within a cluster a point's neighbours lie at sqrt 2
  (4 of them) and 2, so its 3-NN radius is sqrt 2 and its 5-NN radius 2.
  fake: A's 4 centres (1 from each of their cluster's points) and 4 points
  "C" 100 away from everything, +- 0.1 e1, e2 around one spot.
  """
  e = np.eye(8)
  offsets = np.concatenate([e[:3], -e[:3]])
  centres_a = [10 * m * e[3] for m in range(4)]
  centres_b = [c + 100 * e[4] for c in centres_a]
  real = np.concatenate([c + offsets for c in centres_a + centres_b])
  fake_c = 100 * e[5] + 0.1 * np.stack([e[0], -e[0], e[1], -e[1]])
  return real, np.concatenate([np.stack(centres_a), fake_c])


def test_precision_recall_density_coverage_known_answers():
  real, fake = _clouds()
  # precision: A's centres lie in their points' balls (1 <= sqrt 2), C in none: 4 / 8.
  # recall: the A points lie within 1 of a centre, whose 3-NN radius is >= 20; B in none.
  assert metrics.precision_recall(real, fake, k=3) == (0.5, 0.5)
  # density: each centre lies in its 6 points' 5-NN balls (1 < 2): 4 * 6 / (5 * 8).
  # coverage: the 24 A balls hold a centre, the 24 B balls nothing.
  assert metrics.density_coverage(real, fake, k=5) == (0.6, 0.5)
  assert metrics.precision_recall(real, real, k=3) == (1.0, 1.0)


def test_knn_metrics_match_brute_force(monkeypatch):
  monkeypatch.setattr(metrics, '_BLOCK', 64)  # 3 row blocks, the last padded.
  rng = np.random.default_rng(1)
  real = rng.normal(size=(150, 8)).astype(np.float32)
  fake = rng.normal(0.3, 1.2, size=(130, 8)).astype(np.float32)
  d = lambda p, q: np.sqrt(((p[:, None].astype(np.float64) - q[None]) ** 2).sum(-1))
  rr, ff, fr = d(real, real), d(fake, fake), d(fake, real)
  radius_r3, radius_f3 = np.sort(rr, 1)[:, 3], np.sort(ff, 1)[:, 3]
  precision = (fr <= radius_r3[None]).any(1).mean()
  recall = (fr.T <= radius_f3[None]).any(1).mean()
  radius_r5 = np.sort(rr, 1)[:, 5]
  density = (fr < radius_r5[None]).sum() / (5 * len(fake))
  coverage = (fr.min(0) < radius_r5).mean()
  ours_pr = metrics.precision_recall(real, fake)
  ours_dc = metrics.density_coverage(real, fake)
  assert ours_pr == pytest.approx((precision, recall), abs=1e-12)
  assert ours_dc == pytest.approx((density, coverage), abs=1e-12)
  assert 0.3 < precision < 1 and 0.3 < recall < 1 and 0.3 < coverage < 1
  stats = stats_lib.FeatureStats()
  stats.update(real)
  assert metrics.precision_recall(stats, fake) == ours_pr  # kept features of FeatureStats
  with pytest.raises(ValueError, match='k=3 nearest neighbours need at least 4'):
    metrics.precision_recall(real[:3], fake)


# ---------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 6)).astype(np.float32)
  labels = np.repeat([3, 5], 20)
  stats = stats_lib.FeatureStats(max_features=30)
  stats.update(x, labels)
  path = tmp_path / 'stats.npz'
  stats_lib.save_stats(str(path), stats, {'weights': 'pt_inception.pth', 'source': 'x'})
  assert os.listdir(tmp_path) == ['stats.npz']
  with np.load(path) as f:  # what pytorch-fid reads: f['mu'][:], f['sigma'][:]
    np.testing.assert_array_equal(f['mu'][:], stats.mu)
    np.testing.assert_array_equal(f['sigma'][:], stats.sigma)
  loaded = stats_lib.load_stats(str(path))
  assert loaded.num == 40 and loaded.meta['num_images'] == 40
  assert loaded.meta['weights'] == 'pt_inception.pth'
  np.testing.assert_array_equal(loaded.features, stats.features)
  np.testing.assert_array_equal(loaded.labels, stats.labels)
  assert sorted(loaded.per_class) == [3, 5] and loaded.per_class[5].num == 20
  np.testing.assert_array_equal(loaded.per_class[5].sigma, stats.per_class[5].sigma)
  assert metrics.fid(loaded, stats) == pytest.approx(0, abs=1e-9)
  assert metrics.intra_fid(loaded, stats) == pytest.approx(0, abs=1e-9)
  with pytest.raises(ValueError, match='cannot be updated'):
    loaded.update(x)


def test_pytorch_fid_reads_ours_and_we_read_theirs(tmp_path):
  from inception_fixture import pytorch_fid_inception
  pytorch_fid_inception()
  from pytorch_fid import fid_score
  rng = np.random.default_rng(0)
  stats = stats_lib.FeatureStats()
  stats.update(rng.normal(size=(10, 4)))
  ours = tmp_path / 'ours.npz'
  stats_lib.save_stats(str(ours), stats)
  mu, sigma = fid_score.compute_statistics_of_path(str(ours), None, 1, 4, 'cpu')
  np.testing.assert_array_equal(mu, stats.mu)
  theirs = tmp_path / 'theirs.npz'
  np.savez_compressed(theirs, mu=mu + 1, sigma=sigma)  # as pytorch-fid --save-stats
  loaded = stats_lib.load_stats(str(theirs))
  assert loaded.num == 0 and loaded.features is None and loaded.meta == {}
  assert metrics.fid(loaded, stats) == pytest.approx(4.0, rel=1e-9)


def test_load_stats_errors(tmp_path):
  garbage = tmp_path / 'garbage.npz'
  garbage.write_bytes(b'not a zip')
  no_mu = tmp_path / 'no_mu.npz'
  np.savez(no_mu, m=np.zeros(3))
  bad_shape = tmp_path / 'bad_shape.npz'
  np.savez(bad_shape, mu=np.zeros(3), sigma=np.zeros((3, 4)))
  for path, why in [(tmp_path / 'missing.npz', 'no such file'),
                    (garbage, 'cannot read it as a stats .npz'),
                    (no_mu, 'no mu and sigma'), (bad_shape, r'sigma \(3, 4\)')]:
    with pytest.raises(ValueError, match=why) as e:
      stats_lib.load_stats(str(path))
    assert str(e.value).startswith(str(path)) and '\n' not in str(e.value)


def _write_png(path, size, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def _fake_extractor(calls):
  """pool = (mean R, mean G, mean B, height): known features without Inception."""

  def extract(images):
    calls.append(images.shape)
    mean = images.reshape(len(images), -1, 3).mean(1)
    return {'pool': np.concatenate([mean, np.full((len(images), 1), images.shape[1])], 1)}

  return extract


def test_compute_stats_on_a_class_folder(tmp_path):
  root = tmp_path / 'images'
  sizes = [8, 12, 12, 12, 8, 8, 8]
  for i, (cls, size) in enumerate(zip(['cat'] * 3 + ['dog'] * 3 + ['emu'], sizes)):
    _write_png(str(root / cls / f'{i}.png'), size, 30 * i)
  (root / 'empty_class').mkdir()
  (root / 'cat' / 'notes.txt').write_text('not an image')
  calls = []
  stats = image_folder.compute_stats(str(root), _fake_extractor(calls), batch_size=2)
  # Batches of 2 at most, one image size each: [8], [12, 12], [12], [8, 8], [8].
  assert calls == [(1, 8, 8, 3), (2, 12, 12, 3), (1, 12, 12, 3), (2, 8, 8, 3), (1, 8, 8, 3)]
  assert stats.num == 7
  assert stats.meta['class_names'] == ['cat', 'dog', 'empty_class', 'emu']
  np.testing.assert_array_equal(stats.labels, [0, 0, 0, 1, 1, 1, 3])
  expected = np.array([[30 * i] * 3 + [s] for i, s in enumerate(sizes)], np.float64)
  np.testing.assert_allclose(stats.mu, expected.mean(0), rtol=1e-6)
  np.testing.assert_allclose(stats.sigma, np.cov(expected, rowvar=False), rtol=1e-5)
  np.testing.assert_allclose(stats.per_class[1].mu, expected[3:6].mean(0), rtol=1e-6)


def test_compute_stats_layouts_and_errors(tmp_path):
  flat = tmp_path / 'flat'
  for i in range(3):
    _write_png(str(flat / f'{i}.jpg'), 8, 50 * i)
  _write_png(str(flat / 'deeper' / 'x' / 'y.PNG'), 8, 200)
  stats = image_folder.compute_stats(str(flat), _fake_extractor([]))
  assert stats.num == 4 and stats.labels is None and stats.per_class == {}
  numbered = tmp_path / 'numbered'
  for i, cls in enumerate(['2', '10', '10']):
    _write_png(str(numbered / cls / f'{i}.png'), 8, 10 * i)
  stats = image_folder.compute_stats(str(numbered), _fake_extractor([]))
  assert sorted(stats.per_class) == [2, 10]  # integer folder names are the class ids.
  stats = image_folder.compute_stats(str(flat), _fake_extractor([]), max_images=2)
  assert stats.num == 2
  (tmp_path / 'empty').mkdir()
  bad = tmp_path / 'bad'
  bad.mkdir()
  (bad / 'broken.png').write_bytes(b'\x89PNG garbage')
  for source, why in [(tmp_path / 'missing', 'no such directory'),
                      (tmp_path / 'empty', 'no .png/.jpg/.jpeg images'),
                      (bad, r'broken.png: cannot read it as an image')]:
    with pytest.raises(ValueError, match=why):
      image_folder.compute_stats(str(source), _fake_extractor([]))
  assert json.loads(json.dumps(stats.meta))['source'] == str(flat)


# ---------------------------------------------------------------------------
# KID against torch-fidelity and clean-fid, on the same features.
# ---------------------------------------------------------------------------

def kid_features(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
  """Pool-feature-like rows: non-negative, 2048-d, mean ~0.4."""
  rng = np.random.default_rng(seed)
  return np.maximum(rng.normal(0.2 + shift, 0.5, (n, 2048)), 0).astype(np.float32)


def test_kid_is_torch_fidelitys_on_the_same_features_and_seed():
  kid = import_reference('torch_fidelity.metric_kid')
  if kid is None:
    pytest.skip('torch-fidelity is not installed')
  import torch
  f1, f2 = kid_features(300, 0, shift=0.05), kid_features(250, 1)
  want = kid.kid_features_to_metric(torch.from_numpy(f1), torch.from_numpy(f2),
                                    kid_subsets=20, kid_subset_size=100, rng_seed=7,
                                    verbose=False)
  mean, std, m = metrics.kernel_inception_distance(f1, f2, num_subsets=20, subset_size=100,
                                                   seed=7)
  assert m == 100 and mean > 1e-3
  np.testing.assert_allclose(mean, want['kernel_inception_distance_mean'], rtol=1e-4)
  np.testing.assert_allclose(std, want['kernel_inception_distance_std'], rtol=1e-3)


def test_kid_is_clean_fids_kernel_distance():
  """With subsets of every row, any draw is a permutation: the estimate is exact."""
  cleanfid = import_reference('cleanfid.fid')
  if cleanfid is None:
    pytest.skip('clean-fid is not installed')
  f1, f2 = kid_features(200, 2, shift=0.05), kid_features(200, 3)
  want = cleanfid.kernel_distance(f1.astype(np.float64), f2.astype(np.float64), num_subsets=3)
  mean, std, m = metrics.kernel_inception_distance(f1, f2, num_subsets=3, subset_size=1000)
  assert m == 200 and std < 1e-9 * mean  # clean-fid's min(n, 1000) rule
  np.testing.assert_allclose(mean, want, rtol=1e-5)
  # Same distribution: about 0, and symmetric in its arguments.
  same, _, _ = metrics.kernel_inception_distance(kid_features(200, 4), f2, num_subsets=3)
  assert abs(same) < 0.05 * mean
  swapped, _, _ = metrics.kernel_inception_distance(f2, f1, num_subsets=3, subset_size=200)
  np.testing.assert_allclose(swapped, mean, rtol=1e-6)
  with pytest.raises(ValueError, match='at least 2'):
    metrics.kernel_inception_distance(f1[:1], f2)
