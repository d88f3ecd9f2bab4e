"""The digits demo's data: scikit-learn's bundled handwritten digits as an image folder.

load_digits (1,797 8x8 images, 10 classes, no download), upsampled to
model.resolution and written once as PNGs in the 'image_folder' layout, split
'train' / 'test' (1,500 / 297, stratified, fixed seed), then read exactly as
a user's image folder is.
"""

import os

from etils import epath
import numpy as np

from biggan_jax import data


DIGITS_CACHE = os.path.join('~', '.cache', 'biggan_jax', 'digits')
DIGITS_TEST_SIZE = 297   # held out for digits_eval's classifier; 1,500 train.
DIGITS_SEED = 0


def digits_split():
  """(images (1797, 8, 8) float in [0, 16], labels, is_test): the fixed stratified split."""
  from sklearn import datasets, model_selection
  digits = datasets.load_digits()
  _, test = model_selection.train_test_split(
      np.arange(len(digits.target)), test_size=DIGITS_TEST_SIZE,
      stratify=digits.target, random_state=DIGITS_SEED)
  is_test = np.zeros(len(digits.target), bool)
  is_test[test] = True
  return digits.images, digits.target, is_test


def upsample_digit(image, resolution: int) -> np.ndarray:
  """One 8x8 digit in [0, 16] -> uint8 (resolution, resolution) grey, as written to PNG."""
  from PIL import Image
  pixels = Image.fromarray(np.uint8(np.round(image * 255.0 / 16.0)), 'L')
  return np.asarray(pixels.resize((resolution, resolution), Image.BICUBIC))


def digits_root(config) -> str:
  return os.path.expanduser(config.dataset.data_dir or DIGITS_CACHE)


def write_digits(root: str, resolution: int) -> str:
  """Writes root/{train,test}/<digit>/<index>.png once (8x8 -> resolution, bicubic).

  Ink is white on black, grey levels 0..16 scaled to 0..255. A folder that
  already holds both splits at this resolution is left as it is (the
  marker file records the resolution), so the PNGs are written once.
  """
  from PIL import Image
  marker = epath.Path(root) / 'DIGITS_RESOLUTION'
  if marker.exists() and marker.read_text().strip() == str(resolution):
    return root
  if marker.exists():
    raise data.DatasetError(
        f'{root}: holds digits at {marker.read_text().strip()}x{marker.read_text().strip()}, '
        f'not {resolution}x{resolution}; set --config.dataset.data_dir to another folder')
  images, labels, is_test = digits_split()
  for i, (image, label, test) in enumerate(zip(images, labels, is_test)):
    folder = epath.Path(root) / ('test' if test else 'train') / str(label)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(upsample_digit(image, resolution)).save(folder / f'{i:04d}.png')
  marker.write_text(str(resolution))
  return root
