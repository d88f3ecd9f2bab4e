"""How well the digits demo learnt: class accuracy and diversity of its samples.

    python -m biggan_jax.digits_eval --workdir=runs/digits [--num_per_class=100] [--seed=0]

An SVC fit on the real 'train' digits judges the EMA G's samples and the real
held-out ones alike (evaluation/digit_classifier.py says how); diversity 1.0 means as
varied as the data. Writes WORKDIR/digits_eval.json and prints a table.
"""

import json
import os
import sys

from absl import flags

from biggan_jax import cli

FLAGS = cli.flag_values()
flags.DEFINE_string('workdir', None, 'Workdir of a digits run (holds checkpoints/).',
                    flag_values=FLAGS)
flags.DEFINE_integer('num_per_class', 100, 'Generated samples per class.', flag_values=FLAGS)
flags.DEFINE_integer('seed', 0, 'Seed of the generated samples.', flag_values=FLAGS)
flags.mark_flag_as_required('workdir', flag_values=FLAGS)


def run() -> str:
  from biggan_jax.checkpoints import run_checkpoints
  from biggan_jax.evaluation import digit_classifier
  from biggan_jax.utils import extras, files
  extras.require('digits', 'digits_eval')
  digit_classifier.check_run(FLAGS.workdir)  # before JAX restores anything.
  meta, variables = run_checkpoints.restore_ema_generator(
      os.path.join(FLAGS.workdir, 'checkpoints'))
  result = digit_classifier.evaluate(FLAGS.workdir, meta, variables, FLAGS.num_per_class,
                                     FLAGS.seed)
  files.write_text(os.path.join(FLAGS.workdir, 'digits_eval.json'), json.dumps(result, indent=2))
  return digit_classifier.summary(result)


def main(argv: list[str]) -> int:
  def body():
    cli.parse(FLAGS, argv)
    return run()
  return cli.run(__doc__, FLAGS, argv, body, errors=(ValueError, OSError))


if __name__ == '__main__':
  cli.exit(main(sys.argv))
