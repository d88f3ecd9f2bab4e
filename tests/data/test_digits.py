"""The digits demo's data: scikit-learn's digits written once as a stratified image folder."""

import numpy as np
from PIL import Image

from biggan_jax.data import digits


def test_writer_makes_a_stratified_image_folder(tmp_path):
  root = digits.write_digits(str(tmp_path / 'digits'), 16)
  counts = {split: {c.name: len(list(c.iterdir())) for c in (tmp_path / 'digits' / split).iterdir()}
            for split in ('train', 'test')}
  assert sorted(counts['train']) == sorted(counts['test']) == [str(d) for d in range(10)]
  assert sum(counts['train'].values()) == 1500 and sum(counts['test'].values()) == 297
  # Stratified: every class holds 16-17 % of its images out, as the whole set does.
  for c in range(10):
    assert 29 <= counts['test'][str(c)] <= 30
    assert 145 <= counts['train'][str(c)] <= 153
  image = np.asarray(Image.open(next((tmp_path / 'digits' / 'train' / '0').iterdir())))
  assert image.shape == (16, 16) and image.dtype == np.uint8 and image.max() > 200
  # Written once: a second call leaves the files alone.
  mtime = (tmp_path / 'digits' / 'DIGITS_RESOLUTION').stat().st_mtime
  assert digits.write_digits(root, 16) == root
  assert (tmp_path / 'digits' / 'DIGITS_RESOLUTION').stat().st_mtime == mtime
