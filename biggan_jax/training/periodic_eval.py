"""Evaluation every eval_every steps: FID/IS of the EMA G, D overfitting, the best FID.

The loop (training/loop.py) builds a `PeriodicEval` before training, so that a
bad reference or Inception path fails fast, and runs it at its eval steps;
the best-FID checkpoint itself is checkpoints/best_fid.py.
"""

import jax
from absl import logging

from biggan_jax import evaluation
from biggan_jax.data import pipeline
from biggan_jax.evaluation import inception, protocol, stats
from biggan_jax.sampling import sampler as sampler_lib
from biggan_jax.training import sharding
from biggan_jax.training import step as train_step

EVAL_KEYS = ('fid', 'is_mean', 'is_std', 'precision', 'recall', 'density', 'coverage')


class PeriodicEval:
  """The reference statistics, the FID Inception and D's fixed batches of a run."""

  def __init__(self, config, train):
    self.ref, self.extractor = load_eval_reference(config)
    self.overfit_batches = d_overfit_batches(config, train.mesh)
    self.generator, discriminator = train.generator, train.discriminator
    self.d_mean_logit = jax.jit(lambda s, x, y: discriminator.apply(
        {'params': s.d_params, **s.d_state}, x, y, train=False).mean())

  def run(self, step: int, state, ema_vars, out) -> None:
    """Evaluates `ema_vars` (the EMA G at `step`), logs the row through `out`
    (training/loop.py's outputs) and keeps it in best_fid/ when its FID is the best."""
    config = out.config
    scalars = evaluate_generator(config, self.generator, ema_vars, self.ref, self.extractor)
    if self.overfit_batches is not None:
      scalars.update(d_overfitting(self.d_mean_logit, state, self.overfit_batches))
    out.log(step, scalars)
    print_eval(step, scalars)
    meta = {**out.meta(step), **scalars, 'eval_ref_stats': config.eval_ref_stats,
            'eval_num_samples': config.eval_num_samples}
    if out.best.maybe_save(step, sharding.agreed(scalars['fid']), ema_vars, meta):
      logging.info('step %d: best FID so far (%.3f), saved to best_fid/', step, out.best.fid)


def load_eval_reference(config):
  """(reference stats, FID Inception), loaded before training so a bad path fails fast."""
  try:
    ref = stats.load_stats(config.eval_ref_stats)
  except ValueError as e:
    raise evaluation.EvaluationError(f'eval_ref_stats: {e}') from None
  try:
    extractor = protocol.make_extractor(config.eval_weights, config.eval_batch_size)
  except ValueError as e:
    raise evaluation.EvaluationError(f'eval_weights: {e}') from None
  if not getattr(extractor, 'has_logits', True) and jax.process_index() == 0:
    print(inception.no_logits_note(extractor.weights), flush=True)
  return ref, extractor


def evaluate_generator(config, generator, ema_vars, ref, extractor) -> dict:
  """FID, IS, precision/recall, density/coverage of the EMA G, untruncated.

  `ema_vars` hold standing statistics, as the sample sheets and checkpoints
  do; the protocol is evaluation/protocol.py's with config.eval_num_samples images and a
  fixed seed (the same z at every eval), on one local device of each host.
  """
  variables = jax.device_put(jax.device_get(ema_vars), jax.local_devices()[0])
  sampler = sampler_lib.Sampler(generator, variables, {'truncation_convention': 'paper'},
                             config.model)
  result = protocol.evaluate_sampler(
      sampler, num_samples=config.eval_num_samples, ref_stats=ref, extractor=extractor,
      batch_size=config.eval_batch_size, seed=config.seed, intra_fid=False)
  scalars = {k: float(result[k]) for k in EVAL_KEYS if result.get(k) is not None}
  scalars['eval_seconds'] = float(result['seconds'])
  return scalars


def d_overfit_batches(config, mesh):
  """A fixed micro-batch of training images and one of eval_heldout_split, or None.

  Brock et al. 2019 (Sec. 4.2, App. F) find that D memorises the training
  set: its scores on training images drift away from those on held-out ones.
  'fake' data has one distribution: its held-out batch is the one of a step
  the run never reaches.
  """
  if not config.eval_heldout_split:
    return None
  heldout = config.copy_and_resolve_references()
  heldout.dataset.split = config.eval_heldout_split

  def first_micro_batch(c, step):
    batch = next(pipeline.create(c, step))
    images = train_step.to_float(batch['image'][0, 0])  # uint8 images: as the step scales them
    return sharding.host_to_global((images, batch['label'][0, 0]), mesh, 0)

  heldout_step = config.total_steps + 1 if config.dataset.name == 'fake' else 0
  return first_micro_batch(config, 0), first_micro_batch(heldout, heldout_step)


def d_overfitting(d_mean_logit, state, batches) -> dict:
  """D's mean logit on the fixed training and held-out batches, and their gap."""
  (x_train, y_train), (x_heldout, y_heldout) = batches
  d_train = float(d_mean_logit(state, x_train, y_train))
  d_heldout = float(d_mean_logit(state, x_heldout, y_heldout))
  return {'d_train': d_train, 'd_heldout': d_heldout, 'd_gap': d_train - d_heldout}


def print_eval(step, s):
  if jax.process_index() == 0:
    line = f"eval {step} | FID {s['fid']:.3f}"
    if 'is_mean' in s:
      line += f" | IS {s['is_mean']:.3f} ± {s['is_std']:.3f}"
    if 'precision' in s:
      line += f" | precision {s['precision']:.3f} recall {s['recall']:.3f}"
    if 'd_gap' in s:
      line += f" | D train {s['d_train']:.3f} held-out {s['d_heldout']:.3f}"
    print(line + f" | {s['eval_seconds']:.0f}s", flush=True)
