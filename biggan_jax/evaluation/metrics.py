"""Sample-quality metrics on Inception features: FID, KID, IS, precision/recall, density/coverage.

Each follows the reference implementation its numbers are reported with:
- FID (Heusel et al. 2017): pytorch-fid's `calculate_frechet_distance` on the
  pool features' mean and unbiased covariance (`np.cov(rowvar=False)`);
- KID (Bińkowski et al. 2018): torch-fidelity's and clean-fid's subset
  protocol (`kernel_inception_distance`);
- IS (Salimans et al. 2016): the 1008-way softmax of the FID Inception's
  logits, in 10 splits, as BigGAN-PyTorch's `inception_tf13.py` (the code
  behind the paper's numbers) and the original IS code compute it;
- precision/recall (Kynkäänniemi et al. 2019, k=3) and density/coverage
  (Naeem et al. 2020, k=5) on k-NN balls of the features;
- intra-FID (Miyato & Koyama 2018): the mean per-class FID.

The features come as `FeatureStats` (evaluation/stats.py). Nothing here needs
tensorflow or torch.
"""

import functools
import warnings
from typing import Iterator

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from scipy import linalg

from biggan_jax.evaluation.stats import FeatureStats


# ---------------------------------------------------------------------------
# FID, intra-FID, IS.
# ---------------------------------------------------------------------------

def _sqrtm(a: np.ndarray) -> np.ndarray:
  with warnings.catch_warnings():  # SciPy < 1.16 warns of singular matrices; checked below.
    warnings.simplefilter('ignore')
    return linalg.sqrtm(a)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2): pytorch-fid's computation.

  ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), with scipy's
  sqrtm; if the product's root is not finite, eps is added to both diagonals,
  and an imaginary part above 1e-3 on the diagonal is an error (ValueError),
  as in pytorch-fid's `calculate_frechet_distance`.
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f'statistics of different dimensions: {mu1.shape[0]} and {mu2.shape[0]}')
  diff = mu1 - mu2
  covmean = _sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    logging.warning('fid calculation produces singular product; adding %s to diagonal of '
                    'cov estimates', eps)
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f'Imaginary component {np.max(np.abs(covmean.imag))} in sqrt(sigma1 '
                       'sigma2): too few images for the feature dimension?')
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(stats1: FeatureStats, stats2: FeatureStats) -> float:
  return frechet_distance(stats1.mu, stats1.sigma, stats2.mu, stats2.sigma)


def intra_fid(real_stats_per_class, fake_stats_per_class) -> float:
  """Mean FID over the classes both sides have (each with >= 2 images).

  Arguments: FeatureStats (their `per_class` is used) or mappings
  class -> FeatureStats.
  """
  real = getattr(real_stats_per_class, 'per_class', real_stats_per_class)
  fake = getattr(fake_stats_per_class, 'per_class', fake_stats_per_class)
  common = sorted(c for c in set(real) & set(fake)
                  if real[c].num != 1 and fake[c].num != 1)
  if not common:
    raise ValueError('intra-FID: no class has at least 2 images on both sides')
  return float(np.mean([fid(real[c], fake[c]) for c in common]))


def inception_score(logits, num_splits: int = 10) -> tuple[float, float]:
  """(mean, std) over splits of exp(E_x KL(p(y|x) || p(y))), p the 1008-way softmax.

  As BigGAN-PyTorch's inception_tf13.py (and the original IS code): softmax
  over all 1008 logits of the 2015-12-05 graph, splits
  [i N / s, (i + 1) N / s), population std. (BigGAN-PyTorch's training-time
  "PYTORCH UNOFFICIAL" IS, inception_utils.py, takes torchvision's 1000-class
  network instead; its README warns it reads 5-10% lower than the TF score.)
  """
  logits = np.asarray(logits, np.float64)
  n = len(logits)
  if logits.ndim != 2 or n < num_splits or num_splits < 1:
    raise ValueError(f'inception_score: logits of shape {logits.shape} for {num_splits} splits')
  log_p = logits - logits.max(axis=1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
  p = np.exp(log_p)
  scores = []
  for i in range(num_splits):
    part, log_part = p[i * n // num_splits:(i + 1) * n // num_splits], log_p[
        i * n // num_splits:(i + 1) * n // num_splits]
    log_marginal = np.log(part.mean(axis=0, keepdims=True))
    kl = np.where(part > 0, part * (log_part - log_marginal), 0.0).sum(axis=1).mean()
    scores.append(np.exp(kl))
  return float(np.mean(scores)), float(np.std(scores))


# ---------------------------------------------------------------------------
# KID.
# ---------------------------------------------------------------------------

KID_SUBSETS = 100       # torch-fidelity's and clean-fid's defaults.
KID_SUBSET_SIZE = 1000
KID_SEED = 2020         # torch-fidelity's rng_seed.


@jax.jit
def _gram(a, b):
  return jnp.matmul(a, b.T, precision='highest')


def _poly_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD² of k(a, b) = (a·b / d + 1)³ (torch-fidelity's mmd2(mmd_est='unbiased')).

  Gram matrices on the device in float32; the kernel and its sums in float64 on
  the host, since the estimate is a small difference of large sums.
  """
  m, d = x.shape
  xj, yj = jnp.asarray(x), jnp.asarray(y)
  k_xx, k_yy, k_xy = ((np.asarray(g, np.float64) / d + 1.0) ** 3
                      for g in (_gram(xj, xj), _gram(yj, yj), _gram(xj, yj)))
  off_diagonal = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
  return float(off_diagonal / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(features_1, features_2, *, num_subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED
                              ) -> tuple[float, float, int]:
  """KID: (mean, std, subset size) of the polynomial-kernel MMD² over random subsets.

  As torch-fidelity's kid_features_to_metric: per subset,
  np.random.RandomState(seed) draws `subset_size` rows of features_1, then of
  features_2, without replacement; the std is over subsets (np.std). Where a
  side has fewer rows, subsets shrink to it (clean-fid's kernel_distance rule;
  torch-fidelity refuses). Arguments: (n, d) features or FeatureStats (their
  kept features).
  """
  f1, f2 = _as_features(features_1, 'first'), _as_features(features_2, 'second')
  if f1.shape[1] != f2.shape[1]:
    raise ValueError(f'KID: features of dimensions {f1.shape[1]} and {f2.shape[1]}')
  m = min(subset_size, len(f1), len(f2))
  if m < 2 or num_subsets < 1:
    raise ValueError(f'KID: {len(f1)} and {len(f2)} features for {num_subsets} subsets: '
                     'each side needs at least 2')
  rng = np.random.RandomState(seed)
  mmds = []
  for _ in range(num_subsets):
    a = f1[rng.choice(len(f1), m, replace=False)]
    b = f2[rng.choice(len(f2), m, replace=False)]
    mmds.append(_poly_mmd2(a, b))
  return float(np.mean(mmds)), float(np.std(mmds)), m


# ---------------------------------------------------------------------------
# k-NN metrics: pairwise distances in blocks, on the default device.
# ---------------------------------------------------------------------------

_BLOCK = 1024


@jax.jit
def _block_sq_dists(q, ref):
  """(b, d), (n, d) -> (b, n) squared Euclidean distances, float32."""
  d = (jnp.sum(q * q, axis=1)[:, None] + jnp.sum(ref * ref, axis=1)[None, :]
       - 2 * jnp.matmul(q, ref.T, precision='highest'))
  return jnp.maximum(d, 0)


@jax.jit
def _block_ball_stats(q, ref, radii_sq):
  """Per query row: # ref balls holding it (<=, <) and the nearest ref's squared distance."""
  d = _block_sq_dists(q, ref)
  inside = d <= radii_sq[None, :]
  strictly = d < radii_sq[None, :]
  return inside.sum(axis=1), strictly.sum(axis=1), d.min(axis=1)


def _blocks(x: np.ndarray) -> Iterator[tuple[jax.Array, int]]:
  """Row blocks of x, the last padded to _BLOCK rows (one compiled program)."""
  for start in range(0, len(x), _BLOCK):
    block = x[start:start + _BLOCK]
    n = len(block)
    yield jnp.asarray(np.pad(block, ((0, _BLOCK - n), (0, 0)))), n


@functools.partial(jax.jit, static_argnums=2)
def _block_kth_nn_sq(q, ref, k: int):
  """The (k+1)-th smallest squared distance of each row: its own (0) comes first."""
  return -jax.lax.top_k(-_block_sq_dists(q, ref), k + 1)[0][:, k]


def _kth_nn_sq(x: np.ndarray, k: int) -> np.ndarray:
  """Squared distance from each row to its k-th nearest other row (the k-NN radius)."""
  if len(x) <= k:
    raise ValueError(f'{len(x)} features: k={k} nearest neighbours need at least {k + 1}')
  ref = jnp.asarray(x)
  return np.concatenate([np.asarray(_block_kth_nn_sq(q, ref, k))[:n] for q, n in _blocks(x)])


def _ball_stats(q: np.ndarray, ref: np.ndarray, radii_sq: np.ndarray):
  ref_j, radii_j = jnp.asarray(ref), jnp.asarray(radii_sq)
  parts = [[np.asarray(a)[:n] for a in _block_ball_stats(b, ref_j, radii_j)]
           for b, n in _blocks(q)]
  return [np.concatenate(p) for p in zip(*parts)]


def _as_features(x, name: str) -> np.ndarray:
  if isinstance(x, FeatureStats):
    if x.features is None:
      raise ValueError(f'{name} statistics keep no features (max_features=0 or a '
                       'pytorch-fid file)')
    x = x.features
  x = np.asarray(x, np.float32)
  if x.ndim != 2:
    raise ValueError(f'{name} features of shape {x.shape}: expected (n, dim)')
  return x


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019).

  precision: the fraction of fake samples inside some real sample's k-NN ball
  (radius: distance to its k-th nearest real neighbour); recall: the fraction
  of real samples inside some fake k-NN ball. Inside means <=, as their
  reference code. real, fake: (n, dim) features or FeatureStats (their kept
  features).
  """
  real, fake = _as_features(real, 'real'), _as_features(fake, 'fake')
  real_r, fake_r = _kth_nn_sq(real, k), _kth_nn_sq(fake, k)
  precision = (_ball_stats(fake, real, real_r)[0] > 0).mean()
  recall = (_ball_stats(real, fake, fake_r)[0] > 0).mean()
  return float(precision), float(recall)


def density_coverage(real, fake, k: int = 5) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020), on the real samples' k-NN balls.

  density: (1 / kM) sum over fakes of the number of real balls holding them;
  coverage: the fraction of real balls that hold at least one fake. Holding
  means <, as their reference code (prdc).
  """
  real, fake = _as_features(real, 'real'), _as_features(fake, 'fake')
  real_r = _kth_nn_sq(real, k)
  _, strictly, _ = _ball_stats(fake, real, real_r)
  _, _, nearest_fake = _ball_stats(real, fake, np.zeros(len(fake), np.float32))
  density = strictly.sum() / (k * len(fake))
  coverage = (nearest_fake < real_r).mean()
  return float(density), float(coverage)
