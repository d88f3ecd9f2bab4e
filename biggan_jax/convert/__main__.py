"""Converts a pretrained BigGAN into a biggan_jax checkpoint directory.

    python -m biggan_jax.convert --source=biggan-pytorch --input=weights/RUN --output=DIR

--source=biggan-pytorch: IN is a BigGAN-PyTorch weights folder as its train.py
writes it: G_ema.pth (else G.pth), state_dict.pth (its 'config' entry gives
the architecture) and, when present, D.pth, converted too so that a run can be
fine-tuned from DIR. DIR (see biggan_jax/checkpoints/converted.py) is what
`python -m biggan_jax.sample --checkpoint=DIR` and
`biggan_jax.load_generator(DIR)` open, with no other flag. An existing DIR is
replaced only with --overwrite. Bad input: one line `error: ...` on stderr,
exit code 2.

--source=huggingface: IN holds config.json and pytorch_model.bin as
pytorch-pretrained-BigGAN ships them (biggan-deep-128/256/512); G only, with
its truncation-dependent BN statistics (biggan_jax/convert/huggingface.py).

--source=tfhub: IN is a TF-Hub BigGAN-deep module (deepmind/biggan-deep-128/1,
-256, -512), untarred: saved_model.pb (its graph holds the BN statistics) and
variables/; G only, read with TensorFlow (biggan_jax/convert/tfhub.py).
"""

import sys

from absl import flags

from biggan_jax import cli
from biggan_jax.convert import SOURCES

FLAGS = cli.flag_values()  # Its own, so that other CLIs' flags never collide.
flags.DEFINE_string('source', None, f'Format of --input: one of {", ".join(SOURCES)}.',
                    flag_values=FLAGS)
flags.DEFINE_string('input', None, 'The pretrained model: a folder (see --source).',
                    flag_values=FLAGS)
flags.DEFINE_string('output', None, 'The checkpoint directory to write.', flag_values=FLAGS)
flags.DEFINE_bool('overwrite', False, 'Replace an existing converted --output directory.',
                  flag_values=FLAGS)
for _name in ('source', 'input', 'output'):
  flags.mark_flag_as_required(_name, flag_values=FLAGS)


def _parse(argv: list[str]) -> None:
  cli.parse(FLAGS, argv)
  if FLAGS.source not in SOURCES:
    raise cli.UsageError(f'--source={FLAGS.source}: unknown; use one of {", ".join(SOURCES)}')


def _run(argv: list[str]) -> str:
  _parse(argv)
  from biggan_jax import convert
  meta = convert.convert(FLAGS.source, FLAGS.input, FLAGS.output, overwrite=FLAGS.overwrite)
  m = meta['model']
  parts = 'G and D' if meta['has_discriminator'] else 'G only'
  return (f"wrote {FLAGS.output}: {m['family']} {m['resolution']}x{m['resolution']}, "
          f"ch {m['ch']}, dim_z {m['dim_z']}, {m['num_classes']} classes ({parts}; "
          f"truncation convention {meta['truncation_convention']!r}). "
          f'Sample: python -m biggan_jax.sample --checkpoint={FLAGS.output} '
          '--output=samples.png')


def main(argv: list[str]) -> int:
  # ValueError: cli.UsageError, ConversionError, CheckpointDirError.
  return cli.run(__doc__, FLAGS, argv, lambda: _run(argv))


if __name__ == '__main__':
  cli.exit(main(sys.argv))
