"""The training loop: mesh, state, checkpoints, the jitted step, logging.

Reads top to bottom like big_vision's train.py. The step itself is in
train_step.py; this file only moves data, calls it, and writes what a run
leaves behind in its workdir:
  checkpoints/<step>/{state,ema_generator,meta}   (Orbax, async)
  metrics.jsonl, TensorBoard events, config.json
  samples/step_<N>.png (EMA G, fixed z and classes), sigma0.png, losses.png
  truncation.png at the end when config.truncations is set
  with eval_every: fid, is_mean, is_std, precision, recall... rows in
  metrics.jsonl, best_fid/<step>/{ema_generator,meta} (the lowest FID so far)
  and, with eval_heldout_split, d_train/d_heldout rows and d_overfit.png
"""

import json
import math
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from etils import epath
import orbax.checkpoint as ocp

from biggan_jax import checkpoint, ema, evaluate, input_pipeline, models, sampling, sharding
from biggan_jax import config as config_lib
from biggan_jax import init_from as init_from_lib
from biggan_jax import train_state, train_step, visualize


class NonFiniteLossError(RuntimeError):
  """Training diverged; the last good checkpoint is kept as it is."""


class _Preemption:
  """Turns SIGTERM (TPU maintenance/preemption) into a flag the loop checks."""

  def __init__(self):
    self.requested = False
    signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True


class _JsonlWriter:
  """metrics.jsonl: one JSON object per logging step (process 0 only).

  Local files are appended to at once; object stores (gs://) cannot append,
  so there the file is rewritten whole at `flush()` (every checkpoint).
  """

  def __init__(self, path: epath.Path):
    self.path = path
    self.local = '://' not in str(path)
    self.rows = [] if self.local or not path.exists() else path.read_text().splitlines()

  def write(self, step, scalars):
    if jax.process_index() != 0:
      return
    line = json.dumps({'step': int(step), **scalars})
    if self.local:
      with self.path.open('a') as f:
        f.write(line + '\n')
    else:
      self.rows.append(line)

  def flush(self):
    if jax.process_index() == 0 and not self.local:
      self.path.write_text('\n'.join(self.rows) + '\n')


def _scalars(metrics, sv, step_time, config):
  """Everything logged at a logging step; `sv` is None between trackings."""
  out = {k: float(v) for k, v in metrics.items()}
  for name, values in (sv or {}).items():
    for i, v in enumerate(np.asarray(values)):
      out[f'sv{i}/{name}'] = float(v)
  out.update(lr_g=config.lr_g, lr_d=config.lr_d, steps_per_sec=1.0 / step_time,
             images_per_sec=config.batch_size * config.num_d_steps / step_time)
  return out


def _print_progress(step, total, s):
  if jax.process_index() == 0:
    eta = int((total - step) / max(s['steps_per_sec'], 1e-9))
    print(f"step {step}/{total} | {s['images_per_sec']:.1f} img/s | "
          f"D {s['d_loss_real'] + s['d_loss_fake']:.3f} G {s['g_loss']:.3f} | "
          f"ETA {eta // 3600}h{eta % 3600 // 60:02d}m{eta % 60:02d}s", flush=True)


def ema_generator_variables(config, generator, state, rng):
  """EMA G with standing statistics: what sampling and evaluation use."""
  m = config.model
  variables = {'params': state.ema_params, **state.ema_state}
  micro = config.batch_size // config.num_accumulations
  return ema.standing_stats(generator, variables, rng, num_passes=config.num_standing_stats,
                            batch_size=micro, dim_z=m.dim_z, num_classes=m.num_classes)


def fixed_sample_inputs(config):
  """Fixed z and classes of the sample sheet: row r shows class r % num_classes."""
  m, rows = config.model, config.num_sample_rows
  z = jax.random.normal(jax.random.PRNGKey(1234), (rows * rows, m.dim_z))
  y = (jnp.arange(rows * rows) // rows) % m.num_classes
  return z, y.astype(jnp.int32)


def truncation_sheet_inputs(config):
  """The truncation sheet's z and classes: one row per threshold, column j shows class j.

  Every row draws jax.random.truncated_normal from the same key, and the
  truncated normal is sampled by inverting its CDF, so column j holds the
  same underlying z squeezed into [-t, t] (Brock et al. 2019, Sec. 3.1).
  """
  m, cols = config.model, config.num_sample_rows
  thresholds = config_lib.truncation_thresholds(config)
  key = jax.random.PRNGKey(4321)
  z = jnp.concatenate([jax.random.truncated_normal(key, -t, t, (cols, m.dim_z))
                       for t in thresholds])
  y = jnp.tile(jnp.arange(cols) % m.num_classes, len(thresholds))
  return z, y.astype(jnp.int32)


# ---------------------------------------------------------------------------
# Evaluation every eval_every steps: FID/IS of the EMA G, D overfitting, best FID.
# ---------------------------------------------------------------------------

EVAL_KEYS = ('fid', 'is_mean', 'is_std', 'precision', 'recall', 'density', 'coverage')


def load_eval_reference(config):
  """(reference stats, FID Inception), loaded before training so a bad path fails fast."""
  from biggan_jax import metrics  # pylint: disable=g-import-not-at-top
  try:
    ref = metrics.load_stats(config.eval_ref_stats)
  except ValueError as e:
    raise input_pipeline.DatasetError(f'eval_ref_stats: {e}') from None
  try:
    extractor = evaluate.make_extractor(config.eval_weights, config.eval_batch_size)
  except ValueError as e:
    raise input_pipeline.DatasetError(f'eval_weights: {e}') from None
  return ref, extractor


def evaluate_generator(config, generator, ema_vars, ref, extractor) -> dict:
  """FID, IS, precision/recall, density/coverage of the EMA G, untruncated.

  `ema_vars` hold standing statistics, as the sample sheets and checkpoints
  do; the protocol is evaluate.py's with config.eval_num_samples images and a
  fixed seed (the same z at every eval), on one local device of each host.
  """
  variables = jax.device_put(jax.device_get(ema_vars), jax.local_devices()[0])
  sampler = sampling.Sampler(generator, variables, {'truncation_convention': 'paper'},
                             config.model)
  result = evaluate.evaluate_sampler(
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
    batch = next(input_pipeline.create(c, step))
    return sharding.host_to_global((batch['image'][0, 0], batch['label'][0, 0]), mesh, 0)

  heldout_step = config.total_steps + 1 if config.dataset.name == 'fake' else 0
  return first_micro_batch(config, 0), first_micro_batch(heldout, heldout_step)


def d_overfitting(d_mean_logit, state, batches) -> dict:
  """D's mean logit on the fixed training and held-out batches, and their gap."""
  (x_train, y_train), (x_heldout, y_heldout) = batches
  d_train = float(d_mean_logit(state, x_train, y_train))
  d_heldout = float(d_mean_logit(state, x_heldout, y_heldout))
  return {'d_train': d_train, 'd_heldout': d_heldout, 'd_gap': d_train - d_heldout}


def agreed(value: float) -> float:
  """Process 0's value on every host, so that all take the same checkpoint decisions."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return float(multihost_utils.broadcast_one_to_all(np.float64(value)))


class BestFid:
  """WORKDIR/best_fid/<step>/{ema_generator,meta}: the EMA G with the lowest FID so far.

  The paper reports scores from before training collapses (Sec. 4.2), so that
  checkpoint is kept apart from the rolling ones, which max_to_keep deletes.
  Orbax writes each step under a temporary name and renames it into place;
  max_to_keep=1 removes the previous best only after the new one is complete.
  meta carries the step, its fid and the eval protocol; a resumed run reads
  the best FID back. `sampling.load_generator('WORKDIR/best_fid')` opens it.
  """

  def __init__(self, directory: epath.Path):
    self.directory = directory
    self.mngr = None
    self.step, self.fid = None, math.inf
    if directory.exists():
      self.mngr = checkpoint.manager(directory, max_to_keep=1)
      self.step = self.mngr.latest_step()
    if self.step is not None:
      meta = self.mngr.restore(self.step, args=ocp.args.Composite(
          meta=ocp.args.JsonRestore()))['meta']
      self.fid = float(meta['fid'])

  def maybe_save(self, step: int, fid: float, ema_vars, meta: dict) -> bool:
    """Saves when `fid` beats the best so far (and `step` is newer); True if saved."""
    if not fid < self.fid or (self.step is not None and step <= self.step):
      return False
    if self.mngr is None:
      self.mngr = checkpoint.manager(self.directory, max_to_keep=1)
    self.mngr.save(step, args=ocp.args.Composite(
        ema_generator=ocp.args.StandardSave(ema_vars),
        meta=ocp.args.JsonSave({**meta, 'fid': fid})))
    self.step, self.fid = step, fid
    return True

  def wait_until_finished(self):
    if self.mngr is not None:
      self.mngr.wait_until_finished()


def _print_eval(step, s):
  if jax.process_index() == 0:
    line = f"eval {step} | FID {s['fid']:.3f} | IS {s['is_mean']:.3f} ± {s['is_std']:.3f}"
    if 'precision' in s:
      line += f" | precision {s['precision']:.3f} recall {s['recall']:.3f}"
    if 'd_gap' in s:
      line += f" | D train {s['d_train']:.3f} held-out {s['d_heldout']:.3f}"
    print(line + f" | {s['eval_seconds']:.0f}s", flush=True)


def train_and_evaluate(config, workdir: str, init_from: str | None = None
                       ) -> train_state.TrainState:
  """Trains (or resumes) in `workdir`, a local path or gs://bucket/dir.

  `init_from`: a new run's G, EMA G and D start from this converted checkpoint
  or training workdir (fine-tuning, biggan_jax/init_from.py).
  """
  workdir = epath.Path(workdir)
  input_pipeline.check(config)
  workdir.mkdir(parents=True, exist_ok=True)
  preemption = _Preemption()
  # ---------------------------------------------------------------- mesh
  mesh = sharding.make_mesh()
  repl = sharding.replicated(mesh)
  logging.info('mesh: %d devices over %d processes', jax.device_count(), jax.process_count())

  # ------------------------------------------- evaluation inputs (fail fast)
  eval_ref = extractor = overfit_batches = None
  if config.eval_every:
    eval_ref, extractor = load_eval_reference(config)
    overfit_batches = d_overfit_batches(config, mesh)

  # ------------------------------------------------- create model and state
  generator = models.create_generator(config.model)
  discriminator = models.create_discriminator(config.model)
  state = jax.jit(lambda k: train_state.create(config, generator, discriminator, k),
                  out_shardings=repl)(jax.random.PRNGKey(config.seed))

  # ------------------------------------------------------ load checkpoint
  mngr = checkpoint.manager(workdir / 'checkpoints',
                            max_to_keep=config.max_to_keep)
  start = 0
  if mngr.latest_step() is not None:
    state, meta = checkpoint.restore_state(mngr, mngr.latest_step(), state)
    start = int(meta['data_position'])
    logging.info('resumed from step %d', start)
    if init_from:
      logging.warning('--init_from=%s ignored: resuming this workdir', init_from)
  elif init_from:
    state = init_from_lib.initialize(state, config, init_from)
  if jax.process_index() == 0:
    (workdir / 'config.json').write_text(config.to_json_best_effort(indent=2))

  # ---------------------------------------------------------- update step
  step_fn = jax.jit(
      train_step.make_train_step(config, generator, discriminator,
                                 sharding.batch_sharding(mesh, 1)),
      in_shardings=(repl, sharding.batch_sharding(mesh, 2)),
      out_shardings=(repl, repl), donate_argnums=0)
  ema_fn = jax.jit(lambda s, k: ema_generator_variables(config, generator, s, k),
                   out_shardings=repl)
  sample_z, sample_y = fixed_sample_inputs(config)
  sample_fn = jax.jit(lambda v: generator.apply(v, sample_z, sample_y, train=False))

  # ------------------------------------------------------------- writers
  from clu import metric_writers  # pylint: disable=g-import-not-at-top  # imports TF
  writer = metric_writers.create_default_writer(str(workdir),
                                                just_logging=jax.process_index() > 0)
  jsonl = _JsonlWriter(workdir / 'metrics.jsonl')

  stats_key = jax.random.PRNGKey(config.seed + 1)

  def checkpoint_meta(step):
    return {'step': step, 'data_position': step, 'model': config.model.to_dict(),
            'kind': 'biggan_jax.train'}

  def save(step):
    ema_vars = ema_fn(state, jax.random.fold_in(stats_key, step))
    checkpoint.save(mngr, step, state, ema_vars, checkpoint_meta(step))
    jsonl.flush()
    if jax.process_index() == 0:
      visualize.plot_training(jsonl.path, workdir)

  # ----------------------------------------------------------- evaluation
  best = BestFid(workdir / 'best_fid')
  d_mean_logit = jax.jit(lambda s, x, y: discriminator.apply(
      {'params': s.d_params, **s.d_state}, x, y, train=False).mean())

  def run_evaluation(step):
    ema_vars = ema_fn(state, jax.random.fold_in(stats_key, step))
    scalars = evaluate_generator(config, generator, ema_vars, eval_ref, extractor)
    if overfit_batches is not None:
      scalars.update(d_overfitting(d_mean_logit, state, overfit_batches))
    writer.write_scalars(step, scalars)
    jsonl.write(step, scalars)
    _print_eval(step, scalars)
    meta = {**checkpoint_meta(step), **scalars, 'eval_ref_stats': config.eval_ref_stats,
            'eval_num_samples': config.eval_num_samples}
    if best.maybe_save(step, agreed(scalars['fid']), ema_vars, meta):
      logging.info('step %d: best FID so far (%.3f), saved to best_fid/', step, best.fid)

  # ----------------------------------------------------------- train loop
  batches = input_pipeline.create(config, start)
  next_batch = sharding.host_to_global(next(batches), mesh, batch_axis=2)
  last_log, last_log_step = time.time(), start
  for step in range(start + 1, config.total_steps + 1):
    batch, next_batch = next_batch, None
    state, metrics = step_fn(state, batch)
    if step < config.total_steps:  # prefetch: transfer the next batch during the step
      next_batch = sharding.host_to_global(next(batches), mesh, batch_axis=2)
    preempted = preemption.requested  # read once: SIGTERM may land at any moment
    is_last = step == config.total_steps or preempted
    tracked = step % config.sv_every == 0  # the step just tracked singular values
    if (step % config.log_every == 0 or tracked or is_last
        or step % config.checkpoint_every == 0):
      metrics = jax.device_get(metrics)
      if not all(math.isfinite(float(v)) for v in metrics.values()):
        mngr.wait_until_finished()
        raise NonFiniteLossError(
            f'step {step}: non-finite loss {metrics}; stopped without saving, the last '
            f'good checkpoint (step {mngr.latest_step()}) is kept')
      now = time.time()
      scalars = _scalars(metrics, jax.device_get(state.sv) if tracked else None,
                         (now - last_log) / (step - last_log_step), config)
      last_log, last_log_step = now, step
      writer.write_scalars(step, scalars)
      jsonl.write(step, scalars)
      _print_progress(step, config.total_steps, scalars)
    if config.sample_every and (step % config.sample_every == 0 or is_last):
      images = sample_fn(ema_fn(state, jax.random.fold_in(stats_key, step)))
      if jax.process_index() == 0:
        visualize.save_image_grid(images, workdir / 'samples' / f'step_{step:07d}.png',
                                  rows=config.num_sample_rows)
      last_log, last_log_step = time.time(), step
    if step % config.checkpoint_every == 0 or is_last:
      save(step)
      last_log, last_log_step = time.time(), step  # keep saving out of steps/s
    if config.eval_every and not preempted and (
        step % config.eval_every == 0 or step == config.total_steps):
      run_evaluation(step)
      last_log, last_log_step = time.time(), step
    if preempted:
      logging.warning('SIGTERM: saved a checkpoint at step %d, exiting', step)
      break
  if config.truncations and state.step == config.total_steps:
    z, y = truncation_sheet_inputs(config)
    variables = ema_fn(state, jax.random.fold_in(stats_key, config.total_steps))
    images = jax.jit(lambda v: generator.apply(v, z, y, train=False))(variables)
    if jax.process_index() == 0:
      visualize.save_image_grid(images, workdir / 'truncation.png',
                                rows=len(config_lib.truncation_thresholds(config)))
  mngr.wait_until_finished()
  best.wait_until_finished()
  writer.flush()
  jsonl.flush()
  if config.eval_every and config.eval_heldout_split and jax.process_index() == 0:
    from biggan_jax import analysis  # pylint: disable=g-import-not-at-top
    analysis.plot_d_overfitting(jsonl.path, workdir / 'd_overfit.png')
  return state
