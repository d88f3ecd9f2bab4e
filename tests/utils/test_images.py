"""Sample sheets: padding, integer upscaling of small tiles, the labelled truncation sheet."""

import numpy as np
from PIL import Image

from biggan_jax.utils import images


def test_small_tiles_are_enlarged_and_padded():
  x = np.random.default_rng(0).uniform(-1, 1, (5, 16, 16, 3)).astype(np.float32)
  sheet = images.image_grid(x, rows=2)
  k, p = images.upscale_factor(16), images.PADDING
  assert k == 8 and sheet.shape == (2 * (128 + p) + p, 3 * (128 + p) + p, 3)
  np.testing.assert_array_equal(images.grid_tiles(sheet, 2, 3, 16)[:1].reshape(3, 16, 16, 3),
                                images.to_uint8(x[:3]))
  # Nearest-neighbour: every 8x8 block is one pixel; the padding is background.
  tile = sheet[p:p + 128, p + 128 + p:p + 256 + p]
  np.testing.assert_array_equal(tile, images.to_uint8(x[1]).repeat(8, 0).repeat(8, 1))
  assert (sheet[:p] == images.BACKGROUND).all() and (sheet[:, 128 + p:128 + 2 * p] == 255).all()
  assert (sheet[-128 - p:, -128 - p:] == 255).all()  # the empty sixth slot
  assert images.upscale_factor(128) == images.upscale_factor(256) == 1
  assert images.upscale_factor(48) == 3


def test_truncation_sheet_has_a_row_per_class_and_a_labelled_column_per_threshold(tmp_path):
  thresholds = [2.0, 1.0, 0.5]
  x = np.random.default_rng(1).uniform(-1, 1, (3 * 4, 16, 16, 3)).astype(np.float32)
  path = tmp_path / 'truncation.png'
  images.save_truncation_sheet(x, path, thresholds)  # as training/loop.py draws them
  sheet = np.asarray(Image.open(path))
  grid = sheet[images.LABEL_HEIGHT:]
  tiles = images.grid_tiles(grid, 4, 3, 16)
  for t in range(3):
    for c in range(4):  # block t, class c -> row c, column t
      np.testing.assert_array_equal(tiles[c, t], images.to_uint8(x[t * 4 + c]))
  label_band = sheet[:images.LABEL_HEIGHT]
  assert (label_band < 128).any(axis=-1).sum() > 50  # some dark text over each column
  for t in range(3):
    left = images.PADDING + t * (128 + images.PADDING)
    assert (label_band[:, left:left + 128] < 128).any()
