"""A stand-in for the FID Inception (evaluation/extractor.py's FeatureExtractor): fixed
random projections of 4x4-pooled pixels to 16-d "pool" features and 10 logits. A 2048-d
FID costs a 2048 x 2048 matrix square root (over a minute on a busy 2-core CPU), so the
metric plumbing is tested with this; the real Inception runs in
tests/evaluation/test_inception.py."""

import numpy as np


class ProjectionExtractor:
  """Stands in for extractor_lib.FeatureExtractor: images -> 16-d pool, 10 logits."""

  def __init__(self, weights=None, batch_size=8):
    rng = np.random.default_rng(0)
    self.w_pool = rng.normal(size=(48, 16))
    self.w_logits = rng.normal(size=(16, 10)) / 2
    self.weights, self.batch_size = weights, batch_size
    self.outputs = []

  def __call__(self, images):
    x = np.asarray(images, np.float32)
    if np.asarray(images).dtype == np.uint8:
      x = x / 127.5 - 1
    n, h, w, _ = x.shape
    pooled = x.reshape(n, 4, h // 4, 4, w // 4, 3).mean((2, 4)).reshape(n, 48)
    pool = (pooled @ self.w_pool).astype(np.float32)
    out = {'pool': pool, 'logits': (pool @ self.w_logits).astype(np.float32)}
    self.outputs.append(out)
    return out
