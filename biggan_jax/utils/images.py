"""Images in [-1, 1] as uint8, PIL images and PNG sheets.

Sheets are laid out as torchvision's make_grid (BigGAN-PyTorch's sample
sheets): tiles separated and framed by `PADDING` pixels. Small images are
enlarged by an integer factor (nearest neighbour, so no pixel is invented)
until a tile is at least `MIN_TILE` pixels: a 16x16 digit is readable at
128x128, and neighbouring tiles no longer touch.
"""

import numpy as np
from etils import epath

from biggan_jax.utils import files

PADDING = 2
MIN_TILE = 128
BACKGROUND = 255
LABEL_HEIGHT = 14  # one line of PIL's default bitmap font.


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


def upscale_factor(size: int, min_tile: int = MIN_TILE) -> int:
  """The integer factor that makes a `size`-pixel tile at least `min_tile` pixels."""
  return max(1, -(-min_tile // size))


def image_grid(images, rows: int, *, padding: int = PADDING, upscale: int | None = None,
               background: int = BACKGROUND) -> np.ndarray:
  """(N, H, W, 3) in [-1, 1] -> one uint8 sheet of `rows` rows, filled row by row.

  Tiles are H*k x W*k, k = `upscale` (default `upscale_factor(H)`), with
  `padding` pixels around and between them (torchvision's make_grid layout).
  """
  images = to_uint8(images)
  n, h, w, c = images.shape
  k = upscale_factor(h) if upscale is None else upscale
  if k > 1:
    images = images.repeat(k, axis=1).repeat(k, axis=2)
    h, w = h * k, w * k
  cols = -(-n // rows)
  sheet = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c),
                  background, np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    top, left = padding + r * (h + padding), padding + col * (w + padding)
    sheet[top:top + h, left:left + w] = images[i]
  return sheet


def grid_tiles(sheet: np.ndarray, rows: int, cols: int, size: int, *,
               padding: int = PADDING, upscale: int | None = None) -> np.ndarray:
  """The inverse of `image_grid`: (rows, cols, size, size, 3) uint8 tiles at native size."""
  k = upscale_factor(size) if upscale is None else upscale
  t = size * k
  out = np.zeros((rows, cols, size, size, sheet.shape[-1]), np.uint8)
  for r in range(rows):
    for c in range(cols):
      top, left = padding + r * (t + padding), padding + c * (t + padding)
      out[r, c] = sheet[top:top + t:k, left:left + t:k]
  return out


def labelled_grid(images, rows: int, col_labels: list[str]) -> np.ndarray:
  """`image_grid` with a line of text above each column (e.g. the truncation τ)."""
  from PIL import Image, ImageDraw
  grid = image_grid(images, rows)
  cols = len(col_labels)
  tile = (grid.shape[1] - PADDING) // cols - PADDING
  canvas = Image.new('RGB', (grid.shape[1], grid.shape[0] + LABEL_HEIGHT),
                     (BACKGROUND,) * 3)
  canvas.paste(Image.fromarray(grid), (0, LABEL_HEIGHT))
  draw = ImageDraw.Draw(canvas)
  for c, label in enumerate(col_labels):
    width = draw.textlength(label)
    left = PADDING + c * (tile + PADDING) + max(0, (tile - width) / 2)
    draw.text((left, 1), label, fill=(0, 0, 0))
  return np.asarray(canvas)


def truncation_sheet(images, thresholds) -> np.ndarray:
  """The truncation sheet oriented as the sample sheets: a row per class, a column per τ.

  `images` come as training/loop.py draws them: len(thresholds) blocks of the
  same classes, block t at threshold t. Columns are labelled 'truncation t'
  (PIL's default bitmap font has no τ).
  """
  images = np.asarray(images)
  n_t = len(thresholds)
  per = images.shape[0] // n_t
  by_class = images.reshape(n_t, per, *images.shape[1:]).swapaxes(0, 1)
  return labelled_grid(by_class.reshape(-1, *images.shape[1:]), per,
                       [f'truncation {t:g}' for t in thresholds])


def save_png(array: np.ndarray, path) -> None:
  """Writes a uint8 (H, W, 3) array as PNG to a local path or gs://, atomically."""
  from PIL import Image
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with files.atomic_path(path) as tmp:
    with epath.Path(tmp).open('wb') as f:
      Image.fromarray(array).save(f, format='PNG')


def save_image_grid(images, path, rows: int) -> None:
  """Writes a PNG sheet (`image_grid`) to a local path or gs://, atomically."""
  save_png(image_grid(images, rows), path)


def save_truncation_sheet(images, path, thresholds) -> None:
  """Writes `truncation_sheet` as a PNG, atomically."""
  save_png(truncation_sheet(images, thresholds), path)


def save_pngs(images, paths) -> None:
  """One PNG per image of `images` (in [-1, 1]), each written atomically."""
  for image, path in zip(to_uint8(images), paths):
    save_png(image, path)


def save_images(images, rows: int, path: str) -> None:
  """OUT.npy: the float32 array as it is; OUT.png: a sheet of `rows` rows (leading axes
  flattened). Written atomically: a failed write leaves OUT as it was."""
  if path.endswith('.npy'):
    with files.atomic_path(path) as tmp, open(tmp, 'wb') as f:
      np.save(f, np.asarray(images, np.float32))
  else:
    save_image_grid(np.asarray(images).reshape(-1, *np.shape(images)[-3:]), path, rows)
