"""Sample-quality metrics on Inception features: FID, IS, precision/recall, density/coverage.

Each follows the reference implementation its numbers are reported with:
- FID (Heusel et al. 2017): pytorch-fid's `calculate_frechet_distance` on the
  pool features' mean and unbiased covariance (`np.cov(rowvar=False)`);
- IS (Salimans et al. 2016): the 1008-way softmax of the FID Inception's
  logits, in 10 splits, as BigGAN-PyTorch's `inception_tf13.py` (the code
  behind the paper's numbers) and the original IS code compute it;
- precision/recall (Kynkäänniemi et al. 2019, k=3) and density/coverage
  (Naeem et al. 2020, k=5) on k-NN balls of the features;
- intra-FID (Miyato & Koyama 2018): the mean per-class FID.

`FeatureStats` accumulates the features of any number of images in constant
memory (float64 sums, plus a bounded random subset of the features for the
k-NN metrics), and `save_stats` writes them as an .npz that pytorch-fid reads
too. Nothing here needs tensorflow or torch.
"""

import collections
import concurrent.futures
import functools
import json
import os
import warnings
from typing import Any, Iterator, Mapping

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from scipy import linalg

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
STATS_FORMAT = 'biggan_jax.metrics.FeatureStats/1'


# ---------------------------------------------------------------------------
# Streaming statistics.
# ---------------------------------------------------------------------------

class FeatureStats:
  """Mean, covariance and a random subset of features, accumulated batch by batch.

  `mu` and `sigma` come from float64 sums around a shift (the first batch's
  mean), so `sigma` equals `np.cov(all_features, rowvar=False)` to ~1e-12
  whatever the number of images; 32 MB at 2048-d.

  `features` (and `labels`) are a uniform random subset of at most
  `max_features` rows (reservoir sampling, fixed seed): what precision/recall,
  density/coverage and their k-NN balls need, independent of input order.

  With labels, `per_class[c]` is a FeatureStats of class c whose mu and sigma
  are those of up to `max_per_class` of its rows (all of them for smaller
  classes, else a uniform random subset): 8 KB per kept row at 2048-d instead
  of 32 MB of sums per class, so ImageNet's 1000 classes at 50 images each
  take 400 MB (and at the default cap of 1000, at most 8 GB).
  `max_per_class=0` keeps no per-class statistics.
  """

  def __init__(self, max_features: int = 10000, *, seed: int = 0,
               max_per_class: int = 1000):
    if max_per_class == 1:
      raise ValueError('max_per_class=1: a covariance needs at least 2 rows (0: none)')
    self.max_features = max_features
    self.max_per_class = max_per_class
    self.meta: dict[str, Any] = {}
    self.per_class: dict[int, 'FeatureStats'] = {}
    self._seed = seed
    self._rng = np.random.default_rng(seed)
    self._num = 0
    self._dim = None
    self._sums = None  # (shift, s1, s2), or None while nothing is seen or for row-only stats.
    self._rows_only = False  # per-class stats: moments of the kept rows.
    self._kept = None  # (features, labels or None), preallocated to max_features rows.
    self._has_labels = None
    self._fixed = None  # (mu, sigma) of stats read from a file.

  @property
  def num(self) -> int:
    """Images seen (for stats read from a pytorch-fid file: 0, unknown)."""
    return self._num

  @property
  def dim(self) -> int | None:
    return self._dim

  def update(self, pool_features, labels=None) -> None:
    """Adds a batch: pool_features (n, dim); labels (n,) ints, in every batch or none."""
    if self._fixed is not None:
      raise ValueError('statistics read from a file cannot be updated')
    x = np.asarray(pool_features, np.float32)
    if x.ndim != 2 or (self._dim is not None and x.shape[1] != self._dim):
      raise ValueError(f'features of shape {x.shape}: expected (n, {self._dim or "dim"})')
    if self._has_labels is not None and (labels is not None) != self._has_labels:
      raise ValueError('give labels with every batch or with none')
    if labels is not None:
      labels = np.asarray(labels)
      if labels.shape != (len(x),) or (labels.size and labels.dtype.kind not in 'iu'):
        raise ValueError(f'labels of shape {labels.shape} ({labels.dtype}) for {len(x)} '
                         'features: expected one integer class per row')
      labels = labels.astype(np.int64)
    if not len(x):
      return
    self._dim, self._has_labels = x.shape[1], labels is not None
    if not self._rows_only:
      if self._sums is None:
        shift = x.astype(np.float64).mean(axis=0)
        self._sums = (shift, np.zeros(self._dim), np.zeros((self._dim, self._dim)))
      shift, s1, s2 = self._sums
      centred = x.astype(np.float64) - shift
      s1 += centred.sum(axis=0)
      s2 += centred.T @ centred
    self._keep(x, labels)
    self._num += len(x)
    if labels is not None and self.max_per_class > 0:
      for label in np.unique(labels):
        c = int(label)
        if c not in self.per_class:
          self.per_class[c] = FeatureStats._rows(self.max_per_class, seed=(self._seed, c))
        self.per_class[c].update(x[labels == label])

  @classmethod
  def _rows(cls, max_rows: int, seed, rows=None, num: int = 0) -> 'FeatureStats':
    """Stats whose mu and sigma are those of their (up to max_rows) kept rows."""
    stats = cls(max_rows, max_per_class=0)
    stats._rng = np.random.default_rng(seed)
    stats._rows_only = True
    if rows is not None:
      rows = np.asarray(rows, np.float32)
      stats._kept, stats._dim = (rows, None), rows.shape[1]
      stats._num, stats.max_features = max(int(num), len(rows)), len(rows)
    return stats

  def _keep(self, x: np.ndarray, labels) -> None:
    """Reservoir sampling (Algorithm R): row t is kept with probability K / (t + 1)."""
    k = self.max_features
    if k <= 0:
      return
    if self._kept is None:
      self._kept = (np.zeros((k, x.shape[1]), np.float32),
                    None if labels is None else np.zeros(k, np.int64))
    features, kept_labels = self._kept
    t = self._num + np.arange(len(x))
    slots = np.where(t < k, t, self._rng.integers(0, t + 1))
    for i in np.flatnonzero(slots < k):
      features[slots[i]] = x[i]
      if kept_labels is not None:
        kept_labels[slots[i]] = labels[i]

  @property
  def mu(self) -> np.ndarray:
    if self._fixed is not None:
      return self._fixed[0]
    self._check_enough(1)
    if self._rows_only:
      return self.features.astype(np.float64).mean(axis=0)
    shift, s1, _ = self._sums
    return shift + s1 / self._num

  @property
  def sigma(self) -> np.ndarray:
    """Unbiased covariance, as np.cov(features, rowvar=False)."""
    if self._fixed is not None:
      return self._fixed[1]
    self._check_enough(2)
    if self._rows_only:
      return np.cov(self.features.astype(np.float64), rowvar=False)
    _, s1, s2 = self._sums
    return (s2 - np.outer(s1, s1) / self._num) / (self._num - 1)

  def _check_enough(self, n: int) -> None:
    if self._num < n:
      raise ValueError(f'statistics of {self._num} images; at least {n} needed')

  @property
  def features(self) -> np.ndarray | None:
    """The kept features (min(num, max_features) rows), or None if none are kept."""
    if self._kept is None:
      return None
    return self._kept[0][:min(self._num, self.max_features)]

  @property
  def labels(self) -> np.ndarray | None:
    if self._kept is None or self._kept[1] is None:
      return None
    return self._kept[1][:min(self._num, self.max_features)]

  @classmethod
  def from_moments(cls, mu, sigma, num: int = 0, features=None, labels=None
                   ) -> 'FeatureStats':
    """Fixed statistics (read from a file): mu, sigma and optionally kept features."""
    stats = cls(0 if features is None else len(features), max_per_class=0)
    stats._fixed = (np.asarray(mu, np.float64), np.asarray(sigma, np.float64))
    stats._dim, stats._num = len(stats._fixed[0]), int(num)
    if features is not None:
      stats._kept = (np.asarray(features, np.float32),
                     None if labels is None else np.asarray(labels, np.int64))
      stats._num = max(stats._num, len(features))
    return stats


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


# ---------------------------------------------------------------------------
# Files: stats .npz (pytorch-fid's keys and more), image folders.
# ---------------------------------------------------------------------------

def save_stats(path: str, stats: FeatureStats, meta: Mapping[str, Any] | None = None) -> None:
  """Writes stats as .npz: pytorch-fid's `mu`, `sigma`, and ours.

  Also `num`, the kept `features` (and `labels`); per class (with >= 2
  images) `class_ids`, `class_num` (images seen), `class_mu` and, for the
  covariances, the kept rows `class_features` with their `class_of_row`
  (1000 class covariances would take 32 GB, their rows at most 8 GB); and
  `meta`, a JSON string of stats.meta updated with `meta` and num_images.
  Written beside `path` and renamed, so a failed write leaves no partial file.
  """
  meta = {**stats.meta, **(meta or {}), 'num_images': stats.num, 'format': STATS_FORMAT}
  arrays = dict(mu=stats.mu, sigma=stats.sigma, num=np.int64(stats.num),
                meta=np.array(json.dumps(meta, sort_keys=True)))
  if stats.features is not None:
    arrays['features'] = stats.features
    if stats.labels is not None:
      arrays['labels'] = stats.labels
  classes = sorted(c for c, s in stats.per_class.items() if s.num >= 2)
  if classes:
    per_class = [stats.per_class[c] for c in classes]
    arrays.update(
        class_ids=np.array(classes, np.int64),
        class_num=np.array([s.num for s in per_class], np.int64),
        class_mu=np.stack([s.mu for s in per_class]),
        class_features=np.concatenate([s.features for s in per_class]),
        class_of_row=np.repeat(np.array(classes, np.int64), [len(s.features) for s in per_class]))
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f'.{os.path.basename(path)}.tmp-{os.getpid()}')
  try:
    with open(tmp, 'wb') as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def load_stats(path: str) -> FeatureStats:
  """Reads save_stats' .npz or a plain pytorch-fid one (mu, sigma); one-line ValueError."""
  try:
    with np.load(path, allow_pickle=False) as f:
      data = {k: f[k] for k in f.files}
  except FileNotFoundError:
    raise ValueError(f'{path}: no such file') from None
  except Exception as e:  # pylint: disable=broad-except  # zip, npy and OS errors.
    raise ValueError(f'{path}: cannot read it as a stats .npz ({type(e).__name__}: '
                     f'{" ".join(str(e).split())[:150]})') from None
  if 'mu' not in data or 'sigma' not in data:
    raise ValueError(f'{path}: no mu and sigma; not a FID statistics file')
  mu, sigma = data['mu'], data['sigma']
  if (mu.ndim != 1 or sigma.shape != (len(mu), len(mu)) or mu.dtype.kind != 'f'
      or sigma.dtype.kind != 'f' or not (np.isfinite(mu).all() and np.isfinite(sigma).all())):
    raise ValueError(f'{path}: mu {mu.shape} and sigma {sigma.shape} are not the finite mean '
                     'and covariance of one feature space')
  try:
    meta = json.loads(str(data['meta'])) if 'meta' in data else {}
    stats = FeatureStats.from_moments(mu, sigma, int(data.get('num', 0)),
                                      data.get('features'), data.get('labels'))
    if 'class_ids' in data:
      of_row = data['class_of_row']
      for c, n in zip(data['class_ids'], data['class_num']):
        stats.per_class[int(c)] = FeatureStats._rows(  # pylint: disable=protected-access
            0, None, data['class_features'][of_row == c], int(n))
  except (ValueError, TypeError, KeyError, IndexError) as e:
    raise ValueError(f'{path}: inconsistent stats file ({type(e).__name__}: {e})') from None
  stats.meta = meta if isinstance(meta, dict) else {}
  return stats


def list_images(root: str) -> tuple[list[str], list[int] | None, list[str] | None]:
  """Image files under root (recursive, sorted), and labels if root/<class>/<image>.

  Classes are root's subfolders as torchvision's ImageFolder orders them
  (sorted names), or their numbers when every name is an integer. Images at
  other depths: no labels.
  """
  files = []
  for directory, subdirs, names in os.walk(root, followlinks=True):
    subdirs.sort()
    files += [os.path.join(directory, n) for n in sorted(names)
              if n.lower().endswith(IMAGE_SUFFIXES)]
  depths = {os.path.relpath(f, root).count(os.sep) for f in files}
  if depths != {1}:
    return files, None, None
  names = sorted(e.name for e in os.scandir(root) if e.is_dir())
  if all(n.isdigit() for n in names):
    ids = {n: int(n) for n in names}
  else:
    ids = {n: i for i, n in enumerate(names)}
  labels = [ids[os.path.relpath(f, root).split(os.sep)[0]] for f in files]
  return files, labels, names


def _read_image(path: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert('RGB'))  # as pytorch-fid's ImagePathDataset.
  except Exception as e:  # pylint: disable=broad-except  # PIL raises many kinds.
    raise ValueError(f'{path}: cannot read it as an image ({type(e).__name__})') from None


def compute_stats(source: str, extractor, batch_size: int | None = None,
                  max_images: int | None = None, max_features: int = 10000,
                  max_per_class: int = 1000) -> FeatureStats:
  """FeatureStats of an image folder's pool features, batch by batch.

  source: a folder of .png/.jpg/.jpeg files, any depth (labels when laid out
  as root/<class>/<image>, see list_images). extractor: a FeatureExtractor
  (or any images -> {'pool': ...} callable). Images are decoded
  `batch_size` at a time (default: the extractor's), consecutive images of
  one size per call. max_images: a random subset (seed 0) of that many files;
  max_features, max_per_class: as FeatureStats.
  """
  if not os.path.isdir(source):
    raise ValueError(f'{source}: no such directory')
  files, labels, names = list_images(source)
  if not files:
    raise ValueError(f'{source}: no {"/".join(IMAGE_SUFFIXES)} images in it or below')
  if max_images is not None and max_images < len(files):
    keep = np.sort(np.random.default_rng(0).choice(len(files), max_images, replace=False))
    files = [files[i] for i in keep]
    labels = None if labels is None else [labels[i] for i in keep]
  batch_size = batch_size or getattr(extractor, 'batch_size', 200)
  stats = FeatureStats(max_features, max_per_class=max_per_class)
  stats.meta = {'source': os.path.abspath(source)}
  if names is not None:
    stats.meta['class_names'] = names

  images, batch = [], []
  for i, image in enumerate(_decoded(files, 2 * batch_size)):
    if images and (len(images) == batch_size or image.shape != images[0].shape):
      stats.update(extractor(np.stack(images))['pool'], None if labels is None else batch)
      images, batch = [], []
      logging.info('compute_stats: %d / %d images of %s', i, len(files), source)
    images.append(image)
    batch.append(None if labels is None else labels[i])
  stats.update(extractor(np.stack(images))['pool'], None if labels is None else batch)
  return stats


def _decoded(files: list[str], ahead: int) -> Iterator[np.ndarray]:
  """Decoded images in order; up to `ahead` decode in threads while the caller extracts."""
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    pending = collections.deque()
    for f in files:
      pending.append(pool.submit(_read_image, f))
      if len(pending) > ahead:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()
