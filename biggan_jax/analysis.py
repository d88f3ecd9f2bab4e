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

`plot_d_overfitting` draws the D overfitting check of training runs with
eval_heldout_split (train.py calls it: WORKDIR/d_overfit.png).

Bad input stops with one line `error: ...` and exit code 2 before anything is
generated; existing outputs are replaced only with --overwrite.
"""

import concurrent.futures
import json
import os
import sys
from typing import Any, Iterable, Iterator

from absl import flags
import numpy as np
from etils import epath

from biggan_jax import cli
from biggan_jax import evaluate
from biggan_jax import visualize

SWEEP_KEYS = ('truncation', 'is_mean', 'is_std', 'fid', 'precision', 'recall', 'density',
              'coverage')


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save_figure(fig, path) -> None:
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open('wb') as f:
    fig.savefig(f, format='png', dpi=100)


def _tau(t) -> str:
  return 'none' if t is None else f'{t:g}'


# ---------------------------------------------------------------------------
# Truncation sweep: the variety-fidelity curve.
# ---------------------------------------------------------------------------

def truncation_sweep(sampler, truncations: Iterable[float | None], *, num_samples: int,
                     ref_stats, extractor, batch_size: int = 100,
                     seed: int = 0) -> list[dict[str, Any]]:
  """One row of metrics per τ (None: no truncation), in the order given."""
  rows = []
  for t in truncations:
    result = evaluate.evaluate_sampler(
        sampler, num_samples=num_samples, ref_stats=ref_stats, extractor=extractor,
        truncation=t, batch_size=batch_size, seed=seed, intra_fid=False)
    rows.append({'truncation': t, **{k: result[k] for k in SWEEP_KEYS[1:]}})
  return rows


def write_jsonl(rows: list[dict], path) -> None:
  epath.Path(path).write_text(''.join(json.dumps(r) + '\n' for r in rows))


def plot_truncation_curve(rows: list[dict], path) -> None:
  """FID against IS across τ (the paper's Fig. 17): up-left is better."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.5))
  x, y = [r['is_mean'] for r in rows], [r['fid'] for r in rows]
  ax.plot(x, y, '-o', ms=4)
  for r, xi, yi in zip(rows, x, y):
    ax.annotate(f"τ={_tau(r['truncation'])}", (xi, yi), textcoords='offset points',
                xytext=(4, 4), fontsize=8)
  ax.set_xlabel('Inception Score')
  ax.set_ylabel('FID')
  ax.set_title('Truncation: variety (FID) against fidelity (IS)')
  fig.tight_layout()
  _save_figure(fig, path)
  plt.close(fig)


# ---------------------------------------------------------------------------
# Interpolations.
# ---------------------------------------------------------------------------

def random_classes(num_classes: int, n: int, seed: int) -> np.ndarray:
  """n classes, distinct while there are enough."""
  rng = np.random.default_rng(seed)
  return rng.choice(num_classes, n, replace=n > num_classes).astype(np.int32)


def interpolations(sampler, classes, *, steps: int = 8, truncation: float | None = None,
                   seed: int = 0, batch_size: int = 32) -> dict[str, np.ndarray]:
  """{'z': (n, steps, R, R, 3), 'class': (n, steps, R, R, 3)} in [-1, 1].

  'z': row i, class classes[i], from G(z0_i) to G(z1_i). 'class': row i at
  one z, from class classes[i] to classes[(i + 1) % n] (n >= 2).
  """
  y = sampler.class_ids(classes)
  if len(y) < 2:
    raise ValueError('interpolations need at least 2 classes (class pairs are consecutive '
                     'classes of the list)')
  z = sampler.draw_z(3 * len(y), truncation, seed)
  z0, z1, z_fixed = z[:len(y)], z[len(y):2 * len(y)], z[2 * len(y):]
  return {
      'z': sampler.interpolate_z(z0, z1, y, steps, truncation=truncation,
                                 batch_size=batch_size),
      'class': sampler.interpolate_classes(z_fixed, y, np.roll(y, -1), steps,
                                           truncation=truncation, batch_size=batch_size),
  }


def save_sheet(images: np.ndarray, path) -> None:
  """(rows, cols, R, R, 3) in [-1, 1] -> one PNG sheet."""
  visualize.save_image_grid(images.reshape(-1, *images.shape[-3:]), path, rows=len(images))


# ---------------------------------------------------------------------------
# Nearest neighbours in the training set.
# ---------------------------------------------------------------------------

def load_image(path: str, resolution: int) -> np.ndarray:
  """uint8 (R, R, 3): centre square on the short side, antialiased bilinear resize.

  The training pipeline's preprocessing (input_pipeline.preprocess), in PIL;
  an image already R x R passes through unchanged.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
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
  from biggan_jax import metrics  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(root):
    raise ValueError(f'{root}: no such directory')
  files = metrics.list_images(root)[0]
  if not files:
    raise ValueError(f'{root}: no {"/".join(metrics.IMAGE_SUFFIXES)} images in it or below')
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    for start in range(0, len(files), batch_size):
      chunk = files[start:start + batch_size]
      yield np.stack(list(pool.map(lambda f: load_image(f, resolution), chunk))), chunk


class _TopK:
  """The k smallest distances per query seen so far, with their images and stream ids."""

  def __init__(self, num_queries: int, k: int):
    self.k = k
    self.distances = np.zeros((num_queries, 0))
    self.ids = np.zeros((num_queries, 0), np.int64)
    self.images = None

  def update(self, distances: np.ndarray, first_id: int, images: np.ndarray) -> None:
    """Merges a batch's (n, b) distances; its images (b, ...) are copied only if kept."""
    n, kept = distances.shape[0], self.distances.shape[1]
    d = np.concatenate([self.distances, distances], axis=1)
    order = np.argsort(d, axis=1, kind='stable')[:, :self.k]
    rows = np.arange(n)[:, None]
    new = order >= kept
    from_batch = images[np.maximum(order - kept, 0)]
    if kept:
      old = self.images[rows, np.minimum(order, kept - 1)]
      from_batch = np.where(new[..., None, None, None], from_batch, old)
    self.images = from_batch
    self.ids = np.where(new, first_id + order - kept,
                        self.ids[rows, np.minimum(order, max(kept - 1, 0))] if kept else 0)
    self.distances = d[rows, order]


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """(n, d), (m, d) -> (n, m) squared L2 distances, float64."""
  a, b = a.astype(np.float64), b.astype(np.float64)
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
  return np.maximum(d, 0)


def _pixels(images: np.ndarray) -> np.ndarray:
  return (images.reshape(len(images), -1).astype(np.float32) / 127.5 - 1)


def nearest_neighbours(samples: np.ndarray, batches: Iterable[tuple[np.ndarray, Any]], *,
                       k: int, extractor=None) -> dict[str, dict[str, np.ndarray]]:
  """The k nearest training images of each sample, in pixel and Inception space.

  Args:
    samples: uint8 (n, R, R, 3).
    batches: (uint8 images (b, R, R, 3), anything) over the training set,
      streamed once; only the running k best per sample are kept.
    k: neighbours per sample.
    extractor: images -> {'pool': ...}; None: pixel space only.
  Returns:
    {'pixel': {...}, 'inception': {...}} with 'distances' (n, k) L2 (pixels
    in [-1, 1]), 'indices' (n, k) positions in the stream, 'images' (n, k,
    R, R, 3) uint8.
  """
  samples = np.asarray(samples)
  if samples.dtype != np.uint8 or samples.ndim != 4:
    raise ValueError(f'samples of shape {samples.shape} ({samples.dtype}): expected uint8 NHWC')
  spaces = {'pixel': (_pixels, _TopK(len(samples), k))}
  if extractor is not None:
    spaces['inception'] = (lambda x: extractor(x)['pool'], _TopK(len(samples), k))
  queries = {name: embed(samples) for name, (embed, _) in spaces.items()}
  seen = 0
  for images, _ in batches:
    if images.shape[1:] != samples.shape[1:]:
      raise ValueError(f'training images of shape {images.shape[1:]} for samples of shape '
                       f'{samples.shape[1:]}')
    for name, (embed, top) in spaces.items():
      top.update(_sq_distances(queries[name], embed(images)), seen, images)
    seen += len(images)
  if seen < k:
    raise ValueError(f'{seen} training images: fewer than k={k}')
  return {name: {'distances': np.sqrt(top.distances), 'indices': top.ids,
                 'images': top.images} for name, (_, top) in spaces.items()}


def save_neighbour_sheet(samples: np.ndarray, neighbours: dict, path) -> None:
  """Row i: sample i, then its neighbours, nearest first."""
  rows = np.concatenate([samples[:, None], neighbours['images']], axis=1)
  save_sheet(rows.astype(np.float32) / 127.5 - 1, path)


# ---------------------------------------------------------------------------
# D overfitting (training runs with eval_heldout_split).
# ---------------------------------------------------------------------------

def plot_d_overfitting(metrics_path, path) -> bool:
  """D's mean logit on training vs held-out images over a run, and the gap.

  Brock et al. 2019, Sec. 4.2: D memorises the training set, so its scores
  on training images rise above those on held-out ones as training goes on.
  False (nothing written) when metrics.jsonl holds no such rows.
  """
  rows = [r for r in visualize.read_jsonl(metrics_path) if 'd_train' in r]
  if not rows:
    return False
  plt = _pyplot()
  steps = [r['step'] for r in rows]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  left.plot(steps, [r['d_train'] for r in rows], '-o', ms=3, label='training images')
  left.plot(steps, [r['d_heldout'] for r in rows], '-o', ms=3, label='held-out images')
  left.set_title("D's mean logit")
  left.legend()
  right.plot(steps, [r['d_gap'] for r in rows], '-o', ms=3, color='C3')
  right.axhline(0, color='grey', lw=0.8)
  right.set_title('gap: training - held-out')
  for ax in (left, right):
    ax.set_xlabel('step')
  fig.tight_layout()
  _save_figure(fig, path)
  plt.close(fig)
  return True


# ---------------------------------------------------------------------------
# The CLI.
# ---------------------------------------------------------------------------

FLAGS = flags.FlagValues()
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
flags.DEFINE_string('weights', None, "pytorch-fid's Inception .pth; unset: cached or "
                    'downloaded.', flag_values=FLAGS)
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

COMMON = ('checkpoint', 'output', 'overwrite', 'seed', 'batch_size', 'step')
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
                        ('num_samples', evaluate.IS_SPLITS)):
    if FLAGS[name].value is not None and FLAGS[name].value < minimum:
      raise cli.UsageError(f'--{name}={FLAGS[name].value}: must be >= {minimum}')
  return command


def _outputs(command: str) -> list[str]:
  """The command's output files; an existing one stops the run unless --overwrite."""
  if os.path.exists(FLAGS.output) and not os.path.isdir(FLAGS.output):
    raise cli.UsageError(f'--output={FLAGS.output} is a file; give a directory')
  paths = [os.path.join(FLAGS.output, name) for name in COMMANDS[command][2]]
  existing = [p for p in paths if os.path.exists(p)]
  if existing and not FLAGS.overwrite:
    raise cli.UsageError(f'{existing[0]} exists; pass --overwrite to replace it')
  return paths


def _truncations() -> list[float | None]:
  from biggan_jax import sampling  # pylint: disable=g-import-not-at-top
  values = []
  for item in FLAGS.truncations:
    if item.strip().lower() == 'none':
      values.append(None)
      continue
    try:
      t = float(item)
    except ValueError:
      raise cli.UsageError(f'--truncations: {item!r} is not a number or none') from None
    sampling.check_truncation(t)
    values.append(t)
  if not values:
    raise cli.UsageError('--truncations: give at least one threshold')
  return values


def _classes(sampler, default_num: int) -> np.ndarray:
  if FLAGS.labels:
    return sampler.class_ids([l.strip() for l in FLAGS.labels if l.strip()])
  return random_classes(sampler.num_classes, FLAGS.num or default_num, FLAGS.seed)


def _run_truncation_sweep(sampler, paths) -> str:
  from biggan_jax import metrics  # pylint: disable=g-import-not-at-top
  truncations = _truncations()
  for t in truncations:
    sampler.draw_z(1, t)  # the convention's limits (tfhub: τ <= 1) before any work.
  ref = metrics.load_stats(FLAGS.ref_stats)
  extractor = evaluate.make_extractor(FLAGS.weights, FLAGS.batch_size)
  rows = truncation_sweep(sampler, truncations, num_samples=FLAGS.num_samples,
                          ref_stats=ref, extractor=extractor, batch_size=FLAGS.batch_size,
                          seed=FLAGS.seed)
  os.makedirs(FLAGS.output, exist_ok=True)
  write_jsonl(rows, paths[0])
  plot_truncation_curve(rows, paths[1])
  best = min(rows, key=lambda r: r['fid'])
  return (f'wrote {paths[0]} and {paths[1]}: {len(rows)} thresholds, best FID '
          f'{best["fid"]:.4g} at τ={_tau(best["truncation"])}')


def _run_interpolations(sampler, paths) -> str:
  sampler.draw_z(1, FLAGS.truncation)
  classes = _classes(sampler, 4)
  sheets = interpolations(sampler, classes, steps=FLAGS.steps, truncation=FLAGS.truncation,
                          seed=FLAGS.seed, batch_size=FLAGS.batch_size)
  save_sheet(sheets['z'], paths[0])
  save_sheet(sheets['class'], paths[1])
  return f'wrote {paths[0]} and {paths[1]}: {len(classes)} rows of {FLAGS.steps}'


def _run_nearest_neighbours(sampler, paths) -> str:
  sampler.draw_z(1, FLAGS.truncation)
  if not os.path.isdir(FLAGS.data):
    raise cli.UsageError(f'--data={FLAGS.data}: no such directory')
  classes = _classes(sampler, 8)
  extractor = evaluate.make_extractor(FLAGS.weights, FLAGS.batch_size)
  samples = sampler.to_uint8(sampler.sample(classes, truncation=FLAGS.truncation,
                                            seed=FLAGS.seed, batch_size=FLAGS.batch_size))
  files = []

  def batches():
    for images, chunk in folder_batches(FLAGS.data, sampler.resolution, FLAGS.batch_size):
      files.extend(chunk)
      yield images, chunk

  result = nearest_neighbours(samples, batches(), k=FLAGS.k, extractor=extractor)
  os.makedirs(FLAGS.output, exist_ok=True)
  save_neighbour_sheet(samples, result['pixel'], paths[0])
  save_neighbour_sheet(samples, result['inception'], paths[1])
  listing = [{'class': int(c), **{
      space: [{'file': files[j], 'distance': float(d)}
              for j, d in zip(result[space]['indices'][i], result[space]['distances'][i])]
      for space in result}} for i, c in enumerate(classes)]
  evaluate.write_json(paths[2], {'data': os.path.abspath(FLAGS.data), 'k': FLAGS.k,
                                 'num_training_images': len(files),
                                 'truncation': FLAGS.truncation, 'seed': FLAGS.seed,
                                 'samples': listing})
  return (f'wrote {", ".join(paths)}: {len(samples)} samples against {len(files)} '
          'training images')


def main(argv: list[str]) -> int:
  def body():
    from biggan_jax import sampling  # pylint: disable=g-import-not-at-top
    command = _parse(argv)
    sampling.check_truncation(FLAGS.truncation)
    paths = _outputs(command)
    sampler = sampling.load_generator(FLAGS.checkpoint, FLAGS.step)
    return globals()[f'_run_{command}'](sampler, paths)
  return cli.run(__doc__, FLAGS, argv, body, errors=(ValueError, OSError))


if __name__ == '__main__':
  sys.exit(main(sys.argv))
