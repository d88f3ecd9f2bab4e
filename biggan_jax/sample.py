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

def _parse(argv: list[str]) -> None:
  """The flags, and the combinations of them that make no sense, before any work."""
  from biggan_jax.sampling import plans  # numpy only
  cli.parse(FLAGS, argv)
  if (FLAGS.output is None) == (FLAGS.outdir is None):
    raise cli.UsageError('give --output=OUT.png|.npy, or --outdir=DIR with --seeds')
  if FLAGS.outdir is not None and FLAGS.seeds is None:
    raise cli.UsageError('--outdir writes one PNG per seed: give --seeds (e.g. --seeds=0-15)')
  if FLAGS.seeds is not None:
    plans.parse_seeds(FLAGS.seeds)
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


def _request():
  """The flags and the files they name as a sampling/plans.py Request."""
  from biggan_jax.sampling import plans
  labels = None
  if FLAGS.labels is not None:
    labels = [l.strip() for l in FLAGS.labels if l.strip()] or None
  elif FLAGS.labels_file:
    labels = _load_npy('labels_file', FLAGS.labels_file)
    if labels.dtype.kind not in 'iuU':
      raise cli.UsageError(f'--labels_file={FLAGS.labels_file}: holds {labels.dtype}; give '
                           'class ids (integers) or names (strings)')
  return plans.Request(
      labels=labels, num=FLAGS.num,
      seeds=None if FLAGS.seeds is None else tuple(plans.parse_seeds(FLAGS.seeds)),
      z=_load_npy('z_file', FLAGS.z_file) if FLAGS.z_file else None,
      z_name=f'--z_file={FLAGS.z_file}', interpolate=FLAGS.interpolate, steps=FLAGS.steps,
      truncation=FLAGS.truncation, seed=FLAGS.seed, batch_size=FLAGS.batch_size)


def _check_outdir(paths) -> None:
  from etils import epath  # local or gs://
  there = [p for p in paths if epath.Path(p).exists()]
  if there and not FLAGS.overwrite:
    raise cli.UsageError(f'--outdir: {there[0]} exists ({len(there)} of the {len(paths)} '
                         'files); pass --overwrite to replace them')


def run() -> str:
  """Samples as the parsed flags say; returns a one-line summary."""
  import os
  from etils import epath
  from biggan_jax.models import truncation  # JAX after the flag checks.
  from biggan_jax.sampling import loading, plans
  from biggan_jax.utils import images as images_lib
  cli.check_output(FLAGS.output, FLAGS.overwrite, SUFFIXES)
  if FLAGS.outdir is not None and epath.Path(FLAGS.outdir).is_file():
    raise cli.UsageError(f'--outdir={FLAGS.outdir} is a file')
  truncation.check_truncation(FLAGS.truncation)
  request = _request()
  sampler = loading.load_generator(FLAGS.checkpoint)
  for skipped in sampler.meta.get('skipped', ()):  # newer checkpoints that did not verify
    print(f'warning: {skipped}', file=sys.stderr)
  if FLAGS.outdir is not None:  # before sampling: are the files free?
    y, seeds, _ = plans.seed_plan(sampler, request)
    _check_outdir([os.path.join(FLAGS.outdir, n) for n in plans.image_names(sampler, y, seeds)])
  result = plans.generate(sampler, request)
  if FLAGS.outdir is not None:
    paths = [os.path.join(FLAGS.outdir, n) for n in result.names]
    _check_outdir(paths)  # still free after sampling?
    images_lib.save_pngs(result.images, paths)
    return (f'wrote {len(paths)} PNGs of {sampler.resolution}x{sampler.resolution} to '
            f'{FLAGS.outdir} ({result.names[0]} ...) from {FLAGS.checkpoint}')
  cli.check_output(FLAGS.output, FLAGS.overwrite, SUFFIXES)  # still free after sampling?
  images_lib.save_images(result.images, result.rows, FLAGS.output)
  layout = ' x '.join(str(d) for d in result.images.shape[:-3])
  return (f'wrote {FLAGS.output}: {layout} images of {sampler.resolution}x'
          f'{sampler.resolution} from {FLAGS.checkpoint}')


def main(argv: list[str]) -> int:
  def body():
    _parse(argv)
    return run()
  # cli.UsageError, CheckpointError, bad labels, z or truncation (ValueError).
  return cli.run(__doc__, FLAGS, argv, body)


if __name__ == '__main__':
  cli.exit(main(sys.argv))
