"""Samples images from a training workdir or a converted checkpoint.

    python -m biggan_jax.sample --checkpoint=PATH --output=OUT [--labels=1,207,980]
        [--num=N] [--truncation=0.5] [--seed=0] [--z_file=z.npy --labels_file=y.npy]
        [--interpolate=z|class --steps=8]
    python -m biggan_jax.sample --checkpoint=PATH --seeds=0-35,40 [--labels=goldfish]
        (--output=OUT | --outdir=DIR)

PATH: a training workdir (its latest EMA generator), a directory written by
`python -m biggan_jax.convert`, a pretrained model's name (biggan-deep-128,
-256, -512: downloaded and converted once into $BIGGAN_JAX_CACHE) or
hf://owner/repo (a pytorch-pretrained-BigGAN folder on the Hugging Face Hub).
OUT ending in .png: a sample sheet; .npy: float32 NHWC in [-1, 1]
(interpolations: (rows, steps, R, R, 3)).

- --labels: class ids or names (ImageNet's for ImageNet models: goldfish,
  golden_retriever, n01443537), one sheet row each with --num images per
  class; without labels, --num (default 8) random classes.
- --seeds: one image per seed and label (a row per label, a column per seed;
  without --labels, a class drawn from each seed), z drawn from that seed
  alone: the z of seed s is the same with any other seeds, and so its image, up to
  float rounding (XLA may round a batch of 8 and one of 1 apart). --outdir
  writes each as DIR/<class>-<name>-seed<s>.png instead of a sheet. z is drawn from --seed in the checkpoint's truncation convention
  at --truncation, exactly as `Sampler.sample` draws it: the paper's trick
  (none by default) for biggan_jax and BigGAN-PyTorch models; τ·truncnorm(-2, 2)
  with the BN statistics of τ (0 < τ <= 1, default 1) for TF-Hub /
  pytorch-pretrained-BigGAN models, whose --truncation also applies to given z.
- --z_file (n, dim_z) with --labels_file (n,) or --labels (n or 1 classes):
  images in the order of the given z and labels.
- --interpolate=z: per row, a class (--labels, or random) and two z (drawn, or
  --z_file of shape (n, 2, dim_z)), --steps images from the first z to the
  second. --interpolate=class: per row, a pair of classes (--labels=a,b[,c,d...]
  or --labels_file of shape (n, 2)) and one z (drawn, or --z_file (n, dim_z)),
  steps linear between the two shared class embeddings.

Bad input (an unknown class, truncation <= 0, a checkpoint of the wrong kind, a
z of another model's dimension, an unreadable file) stops with one line
`error: ...` on stderr and exit code 2, before anything is written; an existing
OUT is replaced only with --overwrite.
"""

import sys

from absl import flags

from biggan_jax import cli

SUFFIXES = ('.png', '.npy')

FLAGS = cli.flag_values()  # Its own, so that other CLIs' flags never collide.
flags.DEFINE_string('checkpoint', None, 'A training workdir or a converted checkpoint directory.',
                    flag_values=FLAGS)
flags.DEFINE_string('output', None, 'OUT.png (a sheet) or OUT.npy (float32 NHWC in [-1, 1]).',
                    flag_values=FLAGS)
flags.DEFINE_string('outdir', None, 'With --seeds: one PNG per image, named by class and seed.',
                    flag_values=FLAGS)
flags.DEFINE_string('seeds', None, 'Seeds, one image each: 0-35,40 (ranges inclusive).',
                    flag_values=FLAGS)
flags.DEFINE_list('labels', None, 'Class ids or names, comma-separated.', flag_values=FLAGS)
flags.DEFINE_integer('num', None, 'Images per class of --labels; without --labels, the '
                     'number of random classes (default 8; 4 rows for interpolations).',
                     flag_values=FLAGS)
flags.DEFINE_float('truncation', None, 'Truncation threshold τ > 0 for drawn z; unset: none.',
                   flag_values=FLAGS)
flags.DEFINE_integer('seed', 0, 'Seed of drawn z (and random classes).', flag_values=FLAGS)
flags.DEFINE_string('z_file', None, '.npy of z to use instead of drawing them.',
                    flag_values=FLAGS)
flags.DEFINE_string('labels_file', None, '.npy of class ids (or names) for the z.',
                    flag_values=FLAGS)
flags.DEFINE_enum('interpolate', None, ['z', 'class'],
                  'z: between two z at a fixed class; class: between two classes at a fixed z.',
                  flag_values=FLAGS)
flags.DEFINE_integer('steps', 8, 'Images per interpolation, endpoints included.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 32, 'Images per jitted generator call.', flag_values=FLAGS)
flags.DEFINE_bool('overwrite', False, 'Replace an existing --output file.', flag_values=FLAGS)
flags.mark_flag_as_required('checkpoint', flag_values=FLAGS)

DEFAULT_NUM = 8
DEFAULT_INTERPOLATIONS = 4


def parse_seeds(text: str) -> list[int]:
  """'0-3,7' -> [0, 1, 2, 3, 7], StyleGAN's generate.py spelling."""
  seeds = []
  for part in filter(None, (p.strip() for p in text.split(','))):
    first, _, last = part.partition('-')
    if not first.isdigit() or (last and not last.isdigit()) or (last and int(last) < int(first)):
      raise cli.UsageError(f'--seeds={text}: {part!r} is not a seed or a range a-b '
                           '(non-negative, a <= b)')
    seeds += range(int(first), int(last or first) + 1)
  if not seeds:
    raise cli.UsageError(f'--seeds={text}: no seeds')
  return seeds


def _parse(argv: list[str]) -> None:
  cli.parse(FLAGS, argv)
  if (FLAGS.output is None) == (FLAGS.outdir is None):
    raise cli.UsageError('give --output=OUT.png|.npy, or --outdir=DIR with --seeds')
  if FLAGS.outdir is not None and FLAGS.seeds is None:
    raise cli.UsageError('--outdir writes one PNG per seed: give --seeds (e.g. --seeds=0-15)')
  if FLAGS.seeds is not None:
    parse_seeds(FLAGS.seeds)
    for flag in ('num', 'z_file', 'labels_file', 'interpolate'):
      if FLAGS[flag].present:
        raise cli.UsageError(f'--{flag} does not go with --seeds: each seed is one image '
                             'per label')
  if FLAGS.num is not None and FLAGS.num < 1:
    raise cli.UsageError(f'--num={FLAGS.num}: must be >= 1')
  if FLAGS.steps < 2:
    raise cli.UsageError(f'--steps={FLAGS.steps}: an interpolation needs at least 2')
  if FLAGS.batch_size < 1:
    raise cli.UsageError(f'--batch_size={FLAGS.batch_size}: must be >= 1')
  if FLAGS.labels is not None and FLAGS.labels_file:
    raise cli.UsageError('give --labels or --labels_file, not both')
  if FLAGS.z_file and FLAGS.num is not None:
    raise cli.UsageError('--num does not go with --z_file: its rows give the number of images')


def _load_npy(flag: str, path: str):
  import numpy as np
  try:
    return np.load(path, allow_pickle=False)
  except (OSError, ValueError, EOFError) as e:
    raise cli.UsageError(f'--{flag}={path}: cannot read it as .npy ({cli.one_line(e)})') from None


def _read_z(path: str, sampler, shape: tuple[str, ...]):
  """z from --z_file, checked against the model's dim_z and the expected layout."""
  import numpy as np
  z = _load_npy('z_file', path)
  if z.dtype.kind != 'f' or z.ndim != len(shape) or z.shape[-1] != sampler.dim_z or (
      len(shape) == 3 and z.shape[1] != 2):
    raise cli.UsageError(
        f'--z_file={path}: z of shape {z.shape} ({z.dtype}) but this checkpoint takes '
        f'floats of shape ({", ".join(shape)}) with dim_z={sampler.dim_z} '
        '(z from another model or resolution?)')
  return np.asarray(z, np.float32)


def _given_labels():
  """The labels of --labels or --labels_file (a list or array), or None."""
  if FLAGS.labels is not None:
    return [l.strip() for l in FLAGS.labels if l.strip()] or None
  if FLAGS.labels_file:
    y = _load_npy('labels_file', FLAGS.labels_file)
    if y.dtype.kind not in 'iuU':
      raise cli.UsageError(f'--labels_file={FLAGS.labels_file}: holds {y.dtype}; give class '
                       'ids (integers) or names (strings)')
    return y
  return None


def _random_classes(sampler, n: int):
  import numpy as np
  return np.random.default_rng(FLAGS.seed).integers(0, sampler.num_classes, n)


def _draw_z(sampler, n: int):
  return sampler.draw_z(n, FLAGS.truncation, FLAGS.seed)


def _samples(sampler):
  """(images, rows): plain samples in the order of the given z and labels."""
  import numpy as np
  labels = _given_labels()
  if FLAGS.z_file:
    z = _read_z(FLAGS.z_file, sampler, ('n', 'dim_z'))
    if labels is None:
      raise cli.UsageError('--z_file needs --labels_file (or --labels): one class per z')
    y = sampler.class_ids(labels)
    if len(y) not in (1, len(z)):
      raise cli.UsageError(f'{len(y)} labels for the {len(z)} z of --z_file={FLAGS.z_file}')
    images = sampler.sample(y, z=z, truncation=FLAGS.truncation, batch_size=FLAGS.batch_size)
    return images, _sheet_rows(len(images))
  if labels is None:
    y = _random_classes(sampler, FLAGS.num or DEFAULT_NUM)
    rows = _sheet_rows(len(y))
  else:
    y = sampler.class_ids(labels)
    per_class = FLAGS.num or 1
    rows = len(y) if per_class > 1 else _sheet_rows(len(y))
    y = np.repeat(y, per_class)
  images = sampler.sample(y, truncation=FLAGS.truncation, seed=FLAGS.seed,
                          batch_size=FLAGS.batch_size)
  return images, rows


def _seed_plan(sampler):
  """(labels, seeds, rows) of --seeds: a row per label, a column per seed."""
  import numpy as np
  seeds = parse_seeds(FLAGS.seeds)
  labels = _given_labels()
  if labels is None:  # one image per seed, of a class drawn from it.
    y = np.asarray([np.random.default_rng(s).integers(0, sampler.num_classes) for s in seeds])
    return y, seeds, _sheet_rows(len(seeds))
  classes = sampler.class_ids(labels)
  return np.repeat(classes, len(seeds)), seeds * len(classes), len(classes)


def _image_names(sampler, y, seeds) -> list[str]:
  """<class>-<name>-seed<s>.png: sorted by class, then seed."""
  import re
  width = len(str(sampler.num_classes - 1))
  names = []
  for c, s in zip(y, seeds):
    name = sampler.class_names[c] if sampler.class_names else ''
    slug = re.sub(r'[^0-9a-zA-Z]+', '_', name).strip('_')
    names.append(f'{int(c):0{width}d}{"-" + slug if slug else ""}-seed{s:04d}.png')
  return names


def _check_outdir(paths) -> None:
  import os
  there = [p for p in paths if os.path.exists(p)]
  if there and not FLAGS.overwrite:
    raise cli.UsageError(f'--outdir: {there[0]} exists ({len(there)} of the {len(paths)} '
                         'files); pass --overwrite to replace them')


def _write_outdir(images, names) -> None:
  """One PNG per image, each written atomically."""
  import os
  from biggan_jax.utils import images as images_lib
  paths = [os.path.join(FLAGS.outdir, n) for n in names]
  _check_outdir(paths)  # still free after sampling?
  for image, path in zip(images_lib.to_uint8(images), paths):
    images_lib.save_png(image, path)


def _interpolations(sampler):
  """(images (n, steps, R, R, 3), n)."""
  import numpy as np
  labels = _given_labels()
  if FLAGS.interpolate == 'z':
    if FLAGS.z_file:
      z = _read_z(FLAGS.z_file, sampler, ('n', '2', 'dim_z'))
      y = (sampler.class_ids(labels) if labels is not None
           else _random_classes(sampler, len(z)))
      if len(y) not in (1, len(z)):
        raise cli.UsageError(f'{len(y)} labels for the {len(z)} z pairs of --z_file')
    else:
      y = (np.repeat(sampler.class_ids(labels), FLAGS.num or 1) if labels is not None
           else _random_classes(sampler, FLAGS.num or DEFAULT_INTERPOLATIONS))
      z = _draw_z(sampler, 2 * len(y)).reshape(len(y), 2, sampler.dim_z)
    images = sampler.interpolate_z(z[:, 0], z[:, 1], y, FLAGS.steps,
                                   truncation=FLAGS.truncation, batch_size=FLAGS.batch_size)
    return images, len(images)
  # --interpolate=class
  if labels is not None:
    y = sampler.class_ids(labels)
    if len(y) % 2:
      raise cli.UsageError(f'--interpolate=class takes pairs of classes (a,b[,c,d...]); '
                       f'got {len(y)} labels')
    pairs = y.reshape(-1, 2)
  else:
    n = FLAGS.num or DEFAULT_INTERPOLATIONS
    pairs = _random_classes(sampler, 2 * n).reshape(n, 2)
  if FLAGS.z_file:
    z = _read_z(FLAGS.z_file, sampler, ('n', 'dim_z'))
    if len(z) != len(pairs):
      raise cli.UsageError(f'{len(pairs)} class pairs for the {len(z)} z of --z_file')
  else:
    z = _draw_z(sampler, len(pairs))
  images = sampler.interpolate_classes(z, pairs[:, 0], pairs[:, 1], FLAGS.steps,
                                       truncation=FLAGS.truncation,
                                       batch_size=FLAGS.batch_size)
  return images, len(images)


def _sheet_rows(n: int) -> int:
  """Rows of a roughly square sheet of n images, wider than tall."""
  return max(1, int(n ** 0.5))


def _write(images, rows: int, path: str) -> None:
  """Writes atomically: a failed write leaves OUT as it was."""
  import numpy as np
  from biggan_jax.utils import files, images as images_lib
  if path.endswith('.npy'):
    with files.atomic_path(path) as tmp, open(tmp, 'wb') as f:
      np.save(f, np.asarray(images, np.float32))
  else:
    images_lib.save_image_grid(images.reshape(-1, *images.shape[-3:]), path, rows)


def run() -> str:
  """Samples as the parsed flags say; returns a one-line summary."""
  import os
  from biggan_jax.sampling import loading  # JAX after the flag checks.
  from biggan_jax.models import truncation
  cli.check_output(FLAGS.output, FLAGS.overwrite, SUFFIXES)
  if FLAGS.outdir is not None and os.path.isfile(FLAGS.outdir):
    raise cli.UsageError(f'--outdir={FLAGS.outdir} is a file')
  truncation.check_truncation(FLAGS.truncation)
  sampler = loading.load_generator(FLAGS.checkpoint)
  for skipped in sampler.meta.get('skipped', ()):  # newer checkpoints that did not verify
    print(f'warning: {skipped}', file=sys.stderr)
  if FLAGS.seeds is not None:
    y, seeds, rows = _seed_plan(sampler)
    names = _image_names(sampler, y, seeds)
    if FLAGS.outdir is not None:
      _check_outdir([os.path.join(FLAGS.outdir, n) for n in names])
    images = sampler.sample_seeds(y, seeds, truncation=FLAGS.truncation,
                                  batch_size=FLAGS.batch_size)
    if FLAGS.outdir is not None:
      _write_outdir(images, names)
      return (f'wrote {len(names)} PNGs of {sampler.resolution}x{sampler.resolution} to '
              f'{FLAGS.outdir} ({names[0]} ...) from {FLAGS.checkpoint}')
  elif FLAGS.interpolate:
    images, rows = _interpolations(sampler)
  else:
    images, rows = _samples(sampler)
  cli.check_output(FLAGS.output, FLAGS.overwrite, SUFFIXES)  # still free after sampling?
  _write(images, rows, FLAGS.output)
  layout = ' x '.join(str(d) for d in images.shape[:-3])
  return (f'wrote {FLAGS.output}: {layout} images of {sampler.resolution}x'
          f'{sampler.resolution} from {FLAGS.checkpoint}')


def main(argv: list[str]) -> int:
  def body():
    _parse(argv)
    return run()
  # cli.UsageError, CheckpointError, bad labels or truncation.
  return cli.run(__doc__, FLAGS, argv, body)


if __name__ == '__main__':
  sys.exit(main(sys.argv))
