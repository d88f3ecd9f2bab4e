"""The training loop: mesh, state, checkpoints, the jitted step, logging.

Reads top to bottom like big_vision's train.py. The step itself is in
training/step.py; this file only moves data, calls it, and writes what a run
leaves behind in its workdir:
  checkpoints/<step>/{state,ema_generator,meta}   (Orbax, async)
  metrics.jsonl, TensorBoard events, config.json
  samples/step_<N>.png (EMA G, fixed z and classes), sigma0.png, losses.png
  truncation.png at the end when config.truncations is set
  with eval_every: fid, is_mean, is_std, precision, recall... rows in
  metrics.jsonl, best_fid/<step>/{ema_generator,meta} (the lowest FID so far)
  and, with eval_heldout_split, d_train/d_heldout rows and d_overfit.png
  lock.json while it runs; skipped_checkpoints/ and collapse_guard.jsonl when
  a checkpoint could not be used or the collapse guard acted

What it does about faults (README "Reliability"): training/faults.py checks
every step's state for finiteness and agrees preemption across hosts,
checkpoints/lock.py keeps a second run out, checkpoints/run_checkpoints.py walks
back past checkpoints that do not restore, training/collapse_guard.py rolls
back on the paper's signs of collapse.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from etils import epath

from biggan_jax import config as config_lib
from biggan_jax import errors
from biggan_jax.checkpoints import best_fid, init_from as init_from_lib, lock, resume
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.data import pipeline, sources
from biggan_jax.training import collapse_guard, console, ema, faults, metrics_log
from biggan_jax.training import periodic_eval, plots, sharded_step, sharding
from biggan_jax.training import state as train_state
from biggan_jax.utils import extras, files
from biggan_jax.utils import images as images_lib


class NonFiniteLossError(errors.TrainingError):
  """Training diverged: a step's state is not finite; the checkpoints on disk are all finite."""


def _scalars(metrics, sv, step_time, config):
  """Everything logged at a logging step; `sv` is None between trackings."""
  out = {k: float(v) for k, v in metrics.items()}
  for name, values in (sv or {}).items():
    for i, v in enumerate(np.asarray(values)):
      out[f'sv{i}/{name}'] = float(v)
  out.update(lr_g=config.lr_g, lr_d=config.lr_d, steps_per_sec=1.0 / step_time,
             images_per_sec=config.batch_size * config.num_d_steps / step_time)
  return out


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
  """The truncation sheet's z and classes: one block per threshold, image j of a
  block shows class j (the sheet puts a class per row, a threshold per column).

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


def train_and_evaluate(config, workdir: str, init_from: str | None = None
                       ) -> train_state.TrainState:
  """Trains (or resumes) in `workdir`, a local path or gs://bucket/dir.

  `init_from`: a new run's G, EMA G and D start from this converted checkpoint
  or training workdir (fine-tuning, checkpoints/init_from.py).
  Everything that can be checked without building the model is checked
  first: the dataset, the workdir's model against the config, its lock.
  """
  workdir = epath.Path(workdir)
  sources.check(config)
  resume.check(config, workdir)
  with faults.disk_errors(workdir):
    workdir.mkdir(parents=True, exist_ok=True)
    preemption = faults.Preemption()
    try:
      with lock.hold(workdir):
        return _train(config, workdir, init_from, preemption)
    finally:
      preemption.close()


def _train(config, workdir, init_from, preemption) -> train_state.TrainState:
  started = time.time()
  # ------------------------------- mesh, state layout, jitted init and step
  train = sharded_step.build(config)  # also what --mode=compile compiles (training/sharded_step.py)
  mesh, generator, discriminator = train.mesh, train.generator, train.discriminator
  repl = sharding.replicated(mesh)
  print(f'mesh: {jax.device_count()} devices over {jax.process_count()} processes', flush=True)

  # ------------------------------------------- evaluation inputs (fail fast)
  eval_ref = extractor = overfit_batches = None
  if config.eval_every:
    eval_ref, extractor = periodic_eval.load_eval_reference(config)
    overfit_batches = periodic_eval.d_overfit_batches(config, mesh)

  # ------------------------------------------------------------ create state
  state = train.init(jax.random.PRNGKey(config.seed))

  # ------------------------------------------------------ load checkpoint
  mngr = run_checkpoints.manager(workdir / 'checkpoints',
                            max_to_keep=config.max_to_keep)
  guard = collapse_guard.Guard(config, workdir)
  start = 0
  restored = run_checkpoints.restore_newest(mngr, state)  # walks back past unusable ones
  if restored is not None:
    _, state, meta = restored
    start = int(meta['data_position'])
    config = guard.resume(config, meta)
    logging.info('resumed from step %d', start)
    if init_from:
      logging.warning('--init_from=%s ignored: resuming this workdir', init_from)
  elif init_from:
    state = init_from_lib.initialize(state, config, init_from)
  if start >= config.total_steps:  # a finished workdir: say so, rewrite nothing.
    console.already_trained(config, workdir, start, mngr.all_steps())
    return state
  if jax.process_index() == 0:
    files.write_text(workdir / 'config.json', config.to_json_best_effort(indent=2))

  # ---------------------------------------------------------- update step
  step_fn = train.step
  make_step_fn = lambda c: sharded_step.build(c).step  # when the collapse guard changes the config
  ema_fn = jax.jit(lambda s, k: ema_generator_variables(config, generator, s, k),
                   out_shardings=repl)
  sample_z, sample_y = fixed_sample_inputs(config)
  sample_fn = jax.jit(lambda v: generator.apply(v, sample_z, sample_y, train=False))

  # ------------------------------------------------------------- writers
  extras.import_tensorflow()  # before clu does, without TF's start-up notes
  from clu import metric_writers
  writer = metric_writers.create_default_writer(str(workdir),
                                                just_logging=jax.process_index() > 0)
  jsonl = metrics_log.JsonlWriter(workdir / 'metrics.jsonl', resume_step=start)

  stats_key = jax.random.PRNGKey(config.seed + 1)

  def checkpoint_meta(step):
    return {'step': step, 'data_position': step, 'model': config.model.to_dict(),
            'kind': run_checkpoints.TRAIN_KIND, **guard.meta()}

  def save(step):
    ema_vars = ema_fn(state, jax.random.fold_in(stats_key, step))
    with faults.checkpoint_errors(step, mngr):
      run_checkpoints.save(mngr, step, state, ema_vars, checkpoint_meta(step))
    jsonl.flush()
    if jax.process_index() == 0:
      plots.plot_training(jsonl.path, workdir)

  # ----------------------------------------------------------- evaluation
  best = best_fid.BestFid(workdir / 'best_fid')
  d_mean_logit = jax.jit(lambda s, x, y: discriminator.apply(
      {'params': s.d_params, **s.d_state}, x, y, train=False).mean())

  def run_evaluation(step):
    ema_vars = ema_fn(state, jax.random.fold_in(stats_key, step))
    scalars = periodic_eval.evaluate_generator(config, generator, ema_vars, eval_ref,
                                                extractor)
    if overfit_batches is not None:
      scalars.update(periodic_eval.d_overfitting(d_mean_logit, state, overfit_batches))
    writer.write_scalars(step, scalars)
    jsonl.write(step, scalars)
    periodic_eval.print_eval(step, scalars)
    meta = {**checkpoint_meta(step), **scalars, 'eval_ref_stats': config.eval_ref_stats,
            'eval_num_samples': config.eval_num_samples}
    if best.maybe_save(step, sharding.agreed(scalars['fid']), ema_vars, meta):
      logging.info('step %d: best FID so far (%.3f), saved to best_fid/', step, best.fid)

  # ------------------------------------------------- collapse guard rollback
  def roll_back(alarm):
    """To the newest checkpoint before `alarm`, with the remedy applied; the step to go on from."""
    nonlocal state, config, step_fn, batches, next_batch
    target = collapse_guard.rollback_step(mngr.all_steps(), alarm)
    if target is None:
      raise collapse_guard.CollapseError(
          f'collapse guard: step {alarm.step}: {alarm.reason}; no checkpoint from step '
          f'{alarm.last_healthy} or before to roll back to (checkpoints: {mngr.all_steps()}); '
          'stopped')
    for newer in [s for s in mngr.all_steps() if s > target]:
      run_checkpoints.set_aside(mngr, newer, f'rolled back past at step {alarm.step}: {alarm.reason}')
    target, state, _ = run_checkpoints.restore_newest(mngr, state)  # older if target is unusable
    config = guard.rolled_back(config, alarm, target)
    step_fn = make_step_fn(config)
    monitor.reset()
    jsonl.truncate(target)
    batches = pipeline.create(config, target)
    next_batch = sharding.host_to_global(next(batches), mesh, batch_axis=2)
    return target

  # ----------------------------------------------------------- train loop
  batches = pipeline.create(config, start)
  next_batch = sharding.host_to_global(next(batches), mesh, batch_axis=2)
  compile_seconds = console.compile_step(step_fn, state, next_batch)
  last_log, last_log_step = time.time(), start
  monitor = faults.StepMonitor(mesh)
  steps = collapse_guard.Steps(start, config.total_steps)
  for step in steps:
    batch, next_batch = next_batch, None
    state, metrics = step_fn(state, batch)
    finite = metrics.pop('finite')
    if step < config.total_steps:  # prefetch: transfer the next batch during the step
      next_batch = sharding.host_to_global(next(batches), mesh, batch_axis=2)
    # The previous step's verdict (finite? any host preempted?), read one step late, and
    # this step's on the steps that use their state anyway, before anything is written.
    verdicts = [monitor.push(step, finite, preemption.requested)]
    if faults.is_sync_step(step, config) or (verdicts[0] and verdicts[0].preempted):
      verdicts.append(monitor.current())
    verdicts = [v for v in verdicts if v is not None]
    preempted = any(v.preempted for v in verdicts)
    tracked = step % config.sv_every == 0  # the step just tracked singular values
    is_last = step == config.total_steps or preempted
    bad = next((v.step for v in verdicts if not v.finite), None)
    if bad is not None:
      alarm = guard.non_finite(bad, best.step)
      if alarm is None:
        mngr.wait_until_finished()
        raise NonFiniteLossError(
            f'step {bad}: the new state is not finite; stopped without saving it; '
            f'the newest checkpoint (step {mngr.latest_step()}) and all before it are finite')
      steps.rewind(roll_back(alarm))
      last_log, last_log_step = time.time(), steps.last
      continue
    if (step % config.log_every == 0 or tracked or is_last
        or step % config.checkpoint_every == 0):
      metrics = jax.device_get(metrics)
      now = time.time()
      scalars = _scalars(metrics, jax.device_get(state.sv) if tracked else None,
                         (now - last_log) / (step - last_log_step), config)
      last_log, last_log_step = now, step
      writer.write_scalars(step, scalars)
      jsonl.write(step, scalars)
      console.progress(step, config.total_steps, scalars)
      alarm = guard.observe(step, scalars, best.step)
      if alarm is not None:
        steps.rewind(roll_back(alarm))
        last_log, last_log_step = time.time(), steps.last
        continue
    if config.sample_every and (step % config.sample_every == 0 or is_last):
      images = sample_fn(ema_fn(state, jax.random.fold_in(stats_key, step)))
      if jax.process_index() == 0:
        images_lib.save_image_grid(images, workdir / 'samples' / f'step_{step:07d}.png',
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
      logging.warning('preempted: saved a checkpoint at step %d, exiting', step)
      break
  if config.truncations and state.step == config.total_steps:
    z, y = truncation_sheet_inputs(config)
    variables = ema_fn(state, jax.random.fold_in(stats_key, config.total_steps))
    images = jax.jit(lambda v: generator.apply(v, z, y, train=False))(variables)
    if jax.process_index() == 0:
      images_lib.save_truncation_sheet(images, workdir / 'truncation.png',
                                       config_lib.truncation_thresholds(config))
  with faults.checkpoint_errors(mngr.latest_step(), mngr):
    mngr.wait_until_finished()
  best.wait_until_finished()
  writer.flush()
  jsonl.flush()
  if config.eval_every and config.eval_heldout_split and jax.process_index() == 0:
    plots.plot_d_overfitting(jsonl.path, workdir / 'd_overfit.png')
  console.summary(config, workdir, first=start, last=int(state.step),
                  seconds=time.time() - started, compile_seconds=compile_seconds,
                  checkpoint_steps=mngr.all_steps())
  return state
