"""Folders of images: listing, decoding, and their Inception statistics.

For `python -m biggan_jax.fid DIR` and the nearest-neighbour analysis:
pytorch-fid's reading (PIL, RGB, files sorted), labels from root/<class>/.
"""

import collections
import concurrent.futures
import os
from typing import Iterator

from absl import logging
import numpy as np

from biggan_jax.evaluation.stats import FeatureStats

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')


def list_images(root: str) -> tuple[list[str], list[int] | None, list[str] | None]:
  """Image files under root (recursive, sorted), and labels if root/<class>/<image>.

  Classes are root's subfolders as torchvision's ImageFolder orders them
  (sorted names), or their numbers when every name is an integer. Images at
  other depths: no labels.
  """
  files = []
  for directory, subdirs, names in os.walk(root, followlinks=True):
    subdirs.sort()
    files += [os.path.join(directory, n) for n in sorted(names)
              if n.lower().endswith(IMAGE_SUFFIXES)]
  depths = {os.path.relpath(f, root).count(os.sep) for f in files}
  if depths != {1}:
    return files, None, None
  names = sorted(e.name for e in os.scandir(root) if e.is_dir())
  if all(n.isdigit() for n in names):
    ids = {n: int(n) for n in names}
  else:
    ids = {n: i for i, n in enumerate(names)}
  labels = [ids[os.path.relpath(f, root).split(os.sep)[0]] for f in files]
  return files, labels, names


def _read_image(path: str) -> np.ndarray:
  from PIL import Image
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert('RGB'))  # as pytorch-fid's ImagePathDataset.
  except Exception as e:  # PIL raises many kinds.
    raise ValueError(f'{path}: cannot read it as an image ({type(e).__name__})') from None


def compute_stats(source: str, extractor, batch_size: int | None = None,
                  max_images: int | None = None, max_features: int = 10000,
                  max_per_class: int = 1000) -> FeatureStats:
  """FeatureStats of an image folder's pool features, batch by batch.

  source: a folder of .png/.jpg/.jpeg files, any depth (labels when laid out
  as root/<class>/<image>, see list_images). extractor: a FeatureExtractor
  (or any images -> {'pool': ...} callable). Images are decoded
  `batch_size` at a time (default: the extractor's), consecutive images of
  one size per call. max_images: a random subset (seed 0) of that many files;
  max_features, max_per_class: as FeatureStats.
  """
  if not os.path.isdir(source):
    raise ValueError(f'{source}: no such directory')
  files, labels, names = list_images(source)
  if not files:
    raise ValueError(f'{source}: no {"/".join(IMAGE_SUFFIXES)} images in it or below')
  if max_images is not None and max_images < len(files):
    keep = np.sort(np.random.default_rng(0).choice(len(files), max_images, replace=False))
    files = [files[i] for i in keep]
    labels = None if labels is None else [labels[i] for i in keep]
  batch_size = batch_size or getattr(extractor, 'batch_size', 200)
  stats = FeatureStats(max_features, max_per_class=max_per_class)
  stats.meta = {'source': os.path.abspath(source)}
  if names is not None:
    stats.meta['class_names'] = names

  images, batch = [], []
  for i, image in enumerate(_decoded(files, 2 * batch_size)):
    if images and (len(images) == batch_size or image.shape != images[0].shape):
      stats.update(extractor(np.stack(images))['pool'], None if labels is None else batch)
      images, batch = [], []
      logging.info('compute_stats: %d / %d images of %s', i, len(files), source)
    images.append(image)
    batch.append(None if labels is None else labels[i])
  stats.update(extractor(np.stack(images))['pool'], None if labels is None else batch)
  return stats


def _decoded(files: list[str], ahead: int) -> Iterator[np.ndarray]:
  """Decoded images in order; up to `ahead` decode in threads while the caller extracts."""
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    pending = collections.deque()
    for f in files:
      pending.append(pool.submit(_read_image, f))
      if len(pending) > ahead:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()


def load_image(path: str, resolution: int) -> np.ndarray:
  """uint8 (R, R, 3): centre square on the short side, antialiased bilinear resize.

  The training pipeline's preprocessing (data/preprocess.py), in PIL;
  an image already R x R passes through unchanged.
  """
  from PIL import Image
  with Image.open(path) as image:
    image = image.convert('RGB')
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if s != resolution:
      image = image.resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(image)


def folder_batches(root: str, resolution: int, batch_size: int
                   ) -> Iterator[tuple[np.ndarray, list[str]]]:
  """(uint8 images (b, R, R, 3), their paths) over every image under root, in order."""
  if not os.path.isdir(root):
    raise ValueError(f'{root}: no such directory')
  files = list_images(root)[0]
  if not files:
    raise ValueError(f'{root}: no {"/".join(IMAGE_SUFFIXES)} images in it or below')
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    for start in range(0, len(files), batch_size):
      chunk = files[start:start + batch_size]
      yield np.stack(list(pool.map(lambda f: load_image(f, resolution), chunk))), chunk
