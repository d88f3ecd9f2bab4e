"""How well the digits demo learnt: class accuracy and diversity of its samples.

`python -m biggan_jax.digits_eval` prints and writes these figures.

A small classifier (scikit-learn's SVC, RBF kernel) is fit on the real
'train' split of the digits (data/digits.py's digits_split: 1,500 images) at
8x8. Real images go through the same round trip as generated ones: upsampled
to the model's resolution exactly as written to the image folder, then
averaged back down to 8x8; so real and generated images are judged alike.
Reported, per class and overall:
- accuracy on the real held-out 'test' split (297 images): the ceiling;
- accuracy on `num_per_class` samples of each class from the EMA G with
  standing statistics (the checkpoint's 'ema_generator'), z ~ N(0, I);
- diversity: the mean pairwise L2 distance between generated samples of a
  class divided by the same for the real images of that class (train and
  test). 1.0 means as varied as the data; a G that ignores z scores ~0.
"""

import json
import os

import jax
import ml_collections
import numpy as np

from biggan_jax import models
from biggan_jax.data import digits


def to_8x8(images) -> np.ndarray:
  """(N, R, R[, C]) grey levels in [0, 1] -> (N, 64) in [0, 16], averaging R/8 x R/8 cells."""
  images = np.asarray(images, np.float32)
  if images.ndim == 4:
    images = images.mean(-1)
  n, r = images.shape[:2]
  f = r // 8
  return 16.0 * images.reshape(n, 8, f, 8, f).mean((2, 4)).reshape(n, 64)


def real_digits(resolution: int):
  """(x (1797, 64) after the resolution round trip, labels, is_test)."""
  images, labels, is_test = digits.digits_split()
  up = np.stack([digits.upsample_digit(im, resolution) for im in images]) / 255.0
  return to_8x8(up), labels, is_test


def mean_pairwise_distance(x) -> float:
  """Mean L2 distance over all pairs i < j of the rows of x."""
  sq = (x * x).sum(1)
  d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
  i, j = np.triu_indices(len(x), 1)
  return float(np.sqrt(d2[i, j]).mean())


def generate(model: dict, variables, num_per_class: int, seed: int):
  """(images (10 * n, 64) at 8x8 in [0, 16], labels) from G with `variables` (the EMA G)."""
  m = ml_collections.ConfigDict(model)
  generator = models.create_generator(m)
  labels = np.repeat(np.arange(m.num_classes), num_per_class).astype(np.int32)
  z = jax.random.normal(jax.random.PRNGKey(seed), (len(labels), m.dim_z))
  images = jax.jit(lambda v, z, y: generator.apply(v, z, y, train=False))(variables, z, labels)
  images = (np.clip(np.asarray(images, np.float32), -1, 1) + 1.0) / 2.0
  return to_8x8(images), labels


def check_run(workdir) -> None:
  """Raises ValueError (one line) unless `workdir` holds a saved run of the digits demo."""
  if not os.path.isdir(workdir):
    raise ValueError(f'--workdir={workdir}: no such directory')
  config = os.path.join(workdir, 'config.json')
  if os.path.isfile(config):
    try:
      dataset = json.load(open(config)).get('dataset') or {}
    except (OSError, ValueError, AttributeError):
      dataset = {}
    name = dataset.get('name') if isinstance(dataset, dict) else None
    if name != 'digits':
      raise ValueError(f'--workdir={workdir} is a run on {name!r} data; digits_eval judges '
                       'runs of configs/digits.py (dataset.name digits)')
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    raise ValueError(f'--workdir={workdir}: no checkpoints/ (not a training workdir, or the '
                     'run has not saved a checkpoint yet)')


def evaluate(workdir, meta: dict, variables, num_per_class: int = 100, seed: int = 0) -> dict:
  """The figures above for the EMA G of `workdir`'s checkpoint (its `meta` and
  `variables`, checkpoints/run_checkpoints.py's restore_ema_generator); ValueError
  for a model they do not fit."""
  from sklearn import svm
  fake, fake_y = generate(meta['model'], variables, num_per_class, seed)
  real, real_y, is_test = real_digits(meta['model']['resolution'])
  classifier = svm.SVC(gamma='scale').fit(real[~is_test], real_y[~is_test])
  real_pred = classifier.predict(real[is_test])
  fake_pred = classifier.predict(fake)
  classes = sorted(set(real_y.tolist()))
  per_class = {}
  for c in classes:
    test_c = real_y[is_test] == c
    diversity = (mean_pairwise_distance(fake[fake_y == c]) /
                 mean_pairwise_distance(real[real_y == c]))
    per_class[str(c)] = {
        'real_accuracy': float((real_pred[test_c] == c).mean()),
        'generated_accuracy': float((fake_pred[fake_y == c] == c).mean()),
        'diversity': diversity}
  if sorted(set(fake_y.tolist())) != classes:  # a model of another class count
    raise ValueError(f'--workdir={workdir}: its model has {len(set(fake_y.tolist()))} classes, '
                     f'the digits {len(classes)}; digits_eval judges runs of configs/digits.py')
  return {
      'workdir': str(workdir), 'step': int(meta['step']), 'num_per_class': num_per_class,
      'real_test_accuracy': float((real_pred == real_y[is_test]).mean()),
      'generated_accuracy': float((fake_pred == fake_y).mean()),
      'diversity_mean': float(np.mean([v['diversity'] for v in per_class.values()])),
      'per_class': per_class}


def summary(result: dict) -> str:
  lines = [f"digits_eval of {result['workdir']} at step {result['step']} "
           f"({result['num_per_class']} samples per class)",
           'class  real acc  generated acc  diversity']
  for c, v in result['per_class'].items():
    lines.append(f"{c:>5}  {v['real_accuracy']:8.3f}  {v['generated_accuracy']:13.3f}  "
                 f"{v['diversity']:9.3f}")
  lines.append(f"  all  {result['real_test_accuracy']:8.3f}  "
               f"{result['generated_accuracy']:13.3f}  {result['diversity_mean']:9.3f}")
  return '\n'.join(lines)
