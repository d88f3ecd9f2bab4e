"""What `python -m biggan_jax.sample` draws: plain sheets, one image per seed, interpolations.

`generate(sampler, Request(...))` is the whole of it, callable from a notebook;
the CLI only reads its flags and files into a Request and writes the result.
Bad requests raise ValueError with one line that names the option at fault
(the CLI's flag names, as a user reads them there).

- labels: class ids or names, one sheet row each with `num` images per class;
  without labels, `num` (default 8) random classes from `seed`.
- seeds: one image per seed and label (a row per label, a column per seed;
  without labels, a class drawn from each seed), z drawn from that seed alone.
- z (given): images in the order of the given z and labels.
- interpolate='z': per row a class and two z, `steps` images from one to the
  other; 'class': per row a pair of classes and one z, steps between the two
  shared class embeddings.
"""

import dataclasses
import re
from typing import Any

import numpy as np

DEFAULT_NUM = 8
DEFAULT_INTERPOLATIONS = 4


@dataclasses.dataclass(frozen=True)
class Request:
  labels: Any = None            # class ids or names (a list or an array), or None
  num: int | None = None
  seeds: tuple[int, ...] | None = None
  z: np.ndarray | None = None   # given z: (n, dim_z); (n, 2, dim_z) for interpolate='z'
  z_name: str = 'z'             # how errors name the given z (the CLI: --z_file=PATH)
  interpolate: str | None = None
  steps: int = 8
  truncation: float | None = None
  seed: int = 0
  batch_size: int = 32


@dataclasses.dataclass(frozen=True)
class Result:
  images: np.ndarray            # (n, R, R, 3), or (rows, steps, R, R, 3) for interpolations
  rows: int                     # rows of the sheet
  names: list[str] | None       # with seeds: <class>-<name>-seed<s>.png per image


def parse_seeds(text: str) -> list[int]:
  """'0-3,7' -> [0, 1, 2, 3, 7], StyleGAN's generate.py spelling."""
  seeds = []
  for part in filter(None, (p.strip() for p in text.split(','))):
    first, _, last = part.partition('-')
    if not first.isdigit() or (last and not last.isdigit()) or (last and int(last) < int(first)):
      raise ValueError(f'--seeds={text}: {part!r} is not a seed or a range a-b '
                       '(non-negative, a <= b)')
    seeds += range(int(first), int(last or first) + 1)
  if not seeds:
    raise ValueError(f'--seeds={text}: no seeds')
  return seeds


def sheet_rows(n: int) -> int:
  """Rows of a roughly square sheet of n images, wider than tall."""
  return max(1, int(n ** 0.5))


def generate(sampler, request: Request) -> Result:
  """The images `request` asks of `sampler` (a Sampler: sampling/sampler.py)."""
  if request.seeds is not None:
    y, seeds, rows = seed_plan(sampler, request)
    images = sampler.sample_seeds(y, seeds, truncation=request.truncation,
                                  batch_size=request.batch_size)
    return Result(images, rows, image_names(sampler, y, seeds))
  if request.interpolate:
    images = _interpolations(sampler, request)
    return Result(images, len(images), None)
  return Result(*_samples(sampler, request), None)


def seed_plan(sampler, request: Request):
  """(labels, seeds, rows) of `request.seeds`: a row per label, a column per seed."""
  seeds = list(request.seeds)
  if request.labels is None:  # one image per seed, of a class drawn from it.
    y = np.asarray([np.random.default_rng(s).integers(0, sampler.num_classes) for s in seeds])
    return y, seeds, sheet_rows(len(seeds))
  classes = sampler.class_ids(request.labels)
  return np.repeat(classes, len(seeds)), seeds * len(classes), len(classes)


def image_names(sampler, y, seeds) -> list[str]:
  """<class>-<name>-seed<s>.png: sorted by class, then seed."""
  width = len(str(sampler.num_classes - 1))
  names = []
  for c, s in zip(y, seeds):
    name = sampler.class_names[c] if sampler.class_names else ''
    slug = re.sub(r'[^0-9a-zA-Z]+', '_', name).strip('_')
    names.append(f'{int(c):0{width}d}{"-" + slug if slug else ""}-seed{s:04d}.png')
  return names


def check_z(z, sampler, shape: tuple[str, ...], name: str) -> np.ndarray:
  """Given z as float32, checked against the model's dim_z and the expected layout."""
  if z.dtype.kind != 'f' or z.ndim != len(shape) or z.shape[-1] != sampler.dim_z or (
      len(shape) == 3 and z.shape[1] != 2):
    raise ValueError(
        f'{name}: z of shape {z.shape} ({z.dtype}) but this checkpoint takes '
        f'floats of shape ({", ".join(shape)}) with dim_z={sampler.dim_z} '
        '(z from another model or resolution?)')
  return np.asarray(z, np.float32)


def _random_classes(sampler, request: Request, n: int):
  return np.random.default_rng(request.seed).integers(0, sampler.num_classes, n)


def _samples(sampler, request: Request):
  """(images, rows): plain samples in the order of the given z and labels."""
  r = request
  if r.z is not None:
    z = check_z(r.z, sampler, ('n', 'dim_z'), r.z_name)
    if r.labels is None:
      raise ValueError('--z_file needs --labels_file (or --labels): one class per z')
    y = sampler.class_ids(r.labels)
    if len(y) not in (1, len(z)):
      raise ValueError(f'{len(y)} labels for the {len(z)} z of {r.z_name}')
    images = sampler.sample(y, z=z, truncation=r.truncation, batch_size=r.batch_size)
    return images, sheet_rows(len(images))
  if r.labels is None:
    y = _random_classes(sampler, r, r.num or DEFAULT_NUM)
    rows = sheet_rows(len(y))
  else:
    y = sampler.class_ids(r.labels)
    per_class = r.num or 1
    rows = len(y) if per_class > 1 else sheet_rows(len(y))
    y = np.repeat(y, per_class)
  images = sampler.sample(y, truncation=r.truncation, seed=r.seed, batch_size=r.batch_size)
  return images, rows


def _interpolations(sampler, request: Request):
  """Images (n, steps, R, R, 3)."""
  r = request
  if r.interpolate == 'z':
    if r.z is not None:
      z = check_z(r.z, sampler, ('n', '2', 'dim_z'), r.z_name)
      y = (sampler.class_ids(r.labels) if r.labels is not None
           else _random_classes(sampler, r, len(z)))
      if len(y) not in (1, len(z)):
        raise ValueError(f'{len(y)} labels for the {len(z)} z pairs of {r.z_name}')
    else:
      y = (np.repeat(sampler.class_ids(r.labels), r.num or 1) if r.labels is not None
           else _random_classes(sampler, r, r.num or DEFAULT_INTERPOLATIONS))
      z = sampler.draw_z(2 * len(y), r.truncation, r.seed).reshape(len(y), 2, sampler.dim_z)
    return sampler.interpolate_z(z[:, 0], z[:, 1], y, r.steps, truncation=r.truncation,
                                 batch_size=r.batch_size)
  if r.labels is not None:
    y = sampler.class_ids(r.labels)
    if len(y) % 2:
      raise ValueError(f'--interpolate=class takes pairs of classes (a,b[,c,d...]); '
                       f'got {len(y)} labels')
    pairs = y.reshape(-1, 2)
  else:
    n = r.num or DEFAULT_INTERPOLATIONS
    pairs = _random_classes(sampler, r, 2 * n).reshape(n, 2)
  if r.z is not None:
    z = check_z(r.z, sampler, ('n', 'dim_z'), r.z_name)
    if len(z) != len(pairs):
      raise ValueError(f'{len(pairs)} class pairs for the {len(z)} z of {r.z_name}')
  else:
    z = sampler.draw_z(len(pairs), r.truncation, r.seed)
  return sampler.interpolate_classes(z, pairs[:, 0], pairs[:, 1], r.steps,
                                     truncation=r.truncation, batch_size=r.batch_size)
