"""The paper's analysis figures: the truncation curve, interpolations, nearest neighbours.

- truncation_sweep (Brock et al. 2019, Sec. 3.1 and Fig. 17, the
  variety-fidelity trade-off): each τ evaluated with the protocol of
  evaluation/protocol.py (same seed, so every τ squeezes the same underlying
  z); `plot_truncation_curve` draws FID against IS (against τ when the
  Inception weights have no logits).
- interpolations (Fig. 4, App. D): in z at a fixed class, and between the
  shared embeddings of consecutive classes at a fixed z.
- nearest_neighbours (App. "Additional samples": the check that G does not
  copy its training set): the k nearest training images of each sample in
  pixel space and in the FID Inception's 2048-d pool space, streamed.
"""

import json
from typing import Any, Iterable

import numpy as np
from etils import epath

from biggan_jax.evaluation import protocol
from biggan_jax.utils import figures
from biggan_jax.utils import images as images_lib

SWEEP_KEYS = ('truncation', 'is_mean', 'is_std', 'fid', 'precision', 'recall', 'density',
              'coverage')


def _tau(t) -> str:
  return 'none' if t is None else f'{t:g}'


# ---------------------------------------------------------------------------
# Truncation sweep: the variety-fidelity curve.
# ---------------------------------------------------------------------------

def truncation_sweep(sampler, truncations: Iterable[float | None], *, num_samples: int,
                     ref_stats, extractor, batch_size: int = 100,
                     seed: int = 0) -> list[dict[str, Any]]:
  """One row of metrics per τ (None: no truncation), in the order given."""
  rows = []
  for t in truncations:
    result = protocol.evaluate_sampler(
        sampler, num_samples=num_samples, ref_stats=ref_stats, extractor=extractor,
        truncation=t, batch_size=batch_size, seed=seed, intra_fid=False)
    rows.append({'truncation': t, **{k: result[k] for k in SWEEP_KEYS[1:]}})
  return rows


def has_is(rows: list[dict]) -> bool:
  return all(r['is_mean'] is not None for r in rows)


def write_jsonl(rows: list[dict], path) -> None:
  epath.Path(path).write_text(''.join(json.dumps(r) + '\n' for r in rows))


def plot_truncation_curve(rows: list[dict], path) -> None:
  """FID against IS across τ (the paper's Fig. 17): up-left is better.

  Without IS (weights without logits), FID against τ ('none' drawn at the
  largest τ + 1).
  """
  plt = figures.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.5))
  y = [r['fid'] for r in rows]
  if has_is(rows):
    x, style = [r['is_mean'] for r in rows], '-o'
    xlabel, title = 'Inception Score', 'Truncation: variety (FID) against fidelity (IS)'
  else:
    taus = [r['truncation'] for r in rows if r['truncation'] is not None]
    x = [r['truncation'] if r['truncation'] is not None else max(taus, default=1) + 1
         for r in rows]
    style = 'o'
    xlabel = 'truncation τ'
    title = 'Truncation: FID against τ (no IS: the Inception has no logits)'
  ax.plot(x, y, style, ms=4)
  for r, xi, yi in zip(rows, x, y):
    ax.annotate(f"τ={_tau(r['truncation'])}", (xi, yi), textcoords='offset points',
                xytext=(4, 4), fontsize=8)
  ax.set_xlabel(xlabel)
  ax.set_ylabel('FID')
  ax.set_title(title)
  fig.tight_layout()
  figures.save_figure(fig, path)
  plt.close(fig)


# ---------------------------------------------------------------------------
# Interpolations.
# ---------------------------------------------------------------------------

def random_classes(num_classes: int, n: int, seed: int) -> np.ndarray:
  """n classes, distinct while there are enough."""
  rng = np.random.default_rng(seed)
  return rng.choice(num_classes, n, replace=n > num_classes).astype(np.int32)


def interpolations(sampler, classes, *, steps: int = 8, truncation: float | None = None,
                   seed: int = 0, batch_size: int = 32) -> dict[str, np.ndarray]:
  """{'z': (n, steps, R, R, 3), 'class': (n, steps, R, R, 3)} in [-1, 1].

  'z': row i, class classes[i], from G(z0_i) to G(z1_i). 'class': row i at
  one z, from class classes[i] to classes[(i + 1) % n] (n >= 2).
  """
  y = sampler.class_ids(classes)
  if len(y) < 2:
    raise ValueError('interpolations need at least 2 classes (class pairs are consecutive '
                     'classes of the list)')
  z = sampler.draw_z(3 * len(y), truncation, seed)
  z0, z1, z_fixed = z[:len(y)], z[len(y):2 * len(y)], z[2 * len(y):]
  return {
      'z': sampler.interpolate_z(z0, z1, y, steps, truncation=truncation,
                                 batch_size=batch_size),
      'class': sampler.interpolate_classes(z_fixed, y, np.roll(y, -1), steps,
                                           truncation=truncation, batch_size=batch_size),
  }


def save_sheet(images: np.ndarray, path) -> None:
  """(rows, cols, R, R, 3) in [-1, 1] -> one PNG sheet."""
  images_lib.save_image_grid(images.reshape(-1, *images.shape[-3:]), path, rows=len(images))


# ---------------------------------------------------------------------------
# Nearest neighbours in the training set.
# ---------------------------------------------------------------------------

class _TopK:
  """The k smallest distances per query seen so far, with their images and stream ids."""

  def __init__(self, num_queries: int, k: int):
    self.k = k
    self.distances = np.zeros((num_queries, 0))
    self.ids = np.zeros((num_queries, 0), np.int64)
    self.images = None

  def update(self, distances: np.ndarray, first_id: int, images: np.ndarray) -> None:
    """Merges a batch's (n, b) distances; its images (b, ...) are copied only if kept."""
    n, kept = distances.shape[0], self.distances.shape[1]
    d = np.concatenate([self.distances, distances], axis=1)
    order = np.argsort(d, axis=1, kind='stable')[:, :self.k]
    rows = np.arange(n)[:, None]
    new = order >= kept
    from_batch = images[np.maximum(order - kept, 0)]
    if kept:
      old = self.images[rows, np.minimum(order, kept - 1)]
      from_batch = np.where(new[..., None, None, None], from_batch, old)
    self.images = from_batch
    self.ids = np.where(new, first_id + order - kept,
                        self.ids[rows, np.minimum(order, max(kept - 1, 0))] if kept else 0)
    self.distances = d[rows, order]


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """(n, d), (m, d) -> (n, m) squared L2 distances, float64."""
  a, b = a.astype(np.float64), b.astype(np.float64)
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
  return np.maximum(d, 0)


def _pixels(images: np.ndarray) -> np.ndarray:
  return (images.reshape(len(images), -1).astype(np.float32) / 127.5 - 1)


def nearest_neighbours(samples: np.ndarray, batches: Iterable[tuple[np.ndarray, Any]], *,
                       k: int, extractor=None) -> dict[str, dict[str, np.ndarray]]:
  """The k nearest training images of each sample, in pixel and Inception space.

  Args:
    samples: uint8 (n, R, R, 3).
    batches: (uint8 images (b, R, R, 3), anything) over the training set,
      streamed once; only the running k best per sample are kept.
    k: neighbours per sample.
    extractor: images -> {'pool': ...}; None: pixel space only.
  Returns:
    {'pixel': {...}, 'inception': {...}} with 'distances' (n, k) L2 (pixels
    in [-1, 1]), 'indices' (n, k) positions in the stream, 'images' (n, k,
    R, R, 3) uint8.
  """
  samples = np.asarray(samples)
  if samples.dtype != np.uint8 or samples.ndim != 4:
    raise ValueError(f'samples of shape {samples.shape} ({samples.dtype}): expected uint8 NHWC')
  spaces = {'pixel': (_pixels, _TopK(len(samples), k))}
  if extractor is not None:
    spaces['inception'] = (lambda x: extractor(x)['pool'], _TopK(len(samples), k))
  queries = {name: embed(samples) for name, (embed, _) in spaces.items()}
  seen = 0
  for images, _ in batches:
    if images.shape[1:] != samples.shape[1:]:
      raise ValueError(f'training images of shape {images.shape[1:]} for samples of shape '
                       f'{samples.shape[1:]}')
    for name, (embed, top) in spaces.items():
      top.update(_sq_distances(queries[name], embed(images)), seen, images)
    seen += len(images)
  if seen < k:
    raise ValueError(f'{seen} training images: fewer than k={k}')
  return {name: {'distances': np.sqrt(top.distances), 'indices': top.ids,
                 'images': top.images} for name, (_, top) in spaces.items()}


def save_neighbour_sheet(samples: np.ndarray, neighbours: dict, path) -> None:
  """Row i: sample i, then its neighbours, nearest first."""
  rows = np.concatenate([samples[:, None], neighbours['images']], axis=1)
  save_sheet(rows.astype(np.float32) / 127.5 - 1, path)
