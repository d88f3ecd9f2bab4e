"""Images in [-1, 1] as uint8, PIL images and PNG sheets."""

import numpy as np
from etils import epath

from biggan_jax.utils import files


def to_uint8(images) -> np.ndarray:
  """[-1, 1] float images -> uint8 in [0, 255]."""
  return np.asarray(np.clip((np.asarray(images, np.float32) + 1.0) * 127.5 + 0.5, 0, 255),
                    np.uint8)


def to_pil(images):
  """(N, H, W, 3) in [-1, 1] -> a list of PIL images; (H, W, 3) -> one."""
  from PIL import Image
  array = to_uint8(images)
  if array.ndim == 3:
    return Image.fromarray(array)
  return [Image.fromarray(a) for a in array]


def image_grid(images, rows: int) -> np.ndarray:
  """(N, H, W, 3) in [-1, 1] -> one (rows*H, cols*W, 3) uint8 sheet."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  cols = -(-n // rows)
  sheet = np.full((rows * h, cols * w, c), 255, np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    sheet[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
  return sheet


def save_image_grid(images, path, rows: int) -> None:
  """Writes a PNG sheet to a local path or gs://, atomically."""
  from PIL import Image
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with files.atomic_path(path) as tmp:
    with epath.Path(tmp).open('wb') as f:
      Image.fromarray(image_grid(images, rows)).save(f, format='PNG')
