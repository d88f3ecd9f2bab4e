"""Feature statistics of many images in constant memory, and their .npz files.

`FeatureStats` accumulates the features of any number of images (float64
sums, plus a bounded random subset of the features for the k-NN metrics);
`save_stats` writes them as an .npz that pytorch-fid reads too (`mu`,
`sigma`), `load_stats` reads either kind back.
"""

import json
from typing import Any, Mapping

import numpy as np
from etils import epath

from biggan_jax.utils import files

STATS_FORMAT = 'biggan_jax.metrics.FeatureStats/1'  # written into every file: kept as is.


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
  with files.atomic_path(path) as tmp:
    with epath.Path(tmp).open('wb') as f:
      np.savez(f, **arrays)


def load_stats(path: str) -> FeatureStats:
  """Reads save_stats' .npz or a plain pytorch-fid one (mu, sigma); one-line ValueError."""
  try:
    with epath.Path(path).open('rb') as file, np.load(file, allow_pickle=False) as f:
      data = {k: f[k] for k in f.files}
  except FileNotFoundError:
    raise ValueError(f'{path}: no such file') from None
  except Exception as e:  # zip, npy and OS errors.
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
        stats.per_class[int(c)] = FeatureStats._rows(
            0, None, data['class_features'][of_row == c], int(n))
  except (ValueError, TypeError, KeyError, IndexError) as e:
    raise ValueError(f'{path}: inconsistent stats file ({type(e).__name__}: {e})') from None
  stats.meta = meta if isinstance(meta, dict) else {}
  return stats
