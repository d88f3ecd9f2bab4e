"""The training loop: mesh, state, checkpoints, the jitted step, logging.

Reads top to bottom like big_vision's train.py and flax's imagenet
`train_and_evaluate`: `_train` is the run in named sections, and what each
section does is a function below it. The step itself is training/step.py;
when the periodic tasks are due and how the steps are timed,
training/bookkeeping.py. This file only moves data, calls the step, and
writes what a run leaves behind in its workdir:
  checkpoints/<step>/{state,ema_generator,meta}   (Orbax, async)
  metrics.jsonl, TensorBoard events, config.json
  samples/step_<N>.png (EMA G, fixed z and classes), sigma0.png, losses.png
  truncation.png at the end when config.truncations is set
  with eval_every: fid, is_mean, is_std, precision, recall... rows in
  metrics.jsonl, best_fid/<step>/{ema_generator,meta} (the lowest FID so far)
  and, with eval_heldout_split, d_train/d_heldout rows and d_overfit.png
  lock.json while it runs; skipped_checkpoints/ and collapse_guard.jsonl when
  a checkpoint could not be used or the collapse guard acted
  compilation_cache/ (JAX's persistent cache, unless JAX_COMPILATION_CACHE_DIR
  is set): a restart on the same devices compiles nothing

What it does about faults (docs/reliability.md): training/faults.py checks
every step's state for finiteness and agrees preemption across hosts,
checkpoints/lock.py keeps a second run out, checkpoints/run_checkpoints.py
walks back past checkpoints that do not restore, training/collapse_guard.py
rolls back on the paper's signs of collapse.
"""

import dataclasses
import time
from typing import Callable

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
from biggan_jax.training import auto_accumulation, bookkeeping, collapse_guard, console, ema
from biggan_jax.training import faults
from biggan_jax.training import metrics_log, periodic_eval, plots, sharded_step, sharding
from biggan_jax.training import tensorboard_events
from biggan_jax.training import state as train_state
from biggan_jax.utils import extras, files
from biggan_jax.utils import images as images_lib


class NonFiniteLossError(errors.TrainingError):
  """Training diverged: a step's state is not finite; the checkpoints on disk are all finite."""


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
    jax.config.update('jax_compilation_cache_dir', console.compilation_cache_dir(workdir))
    preemption = faults.Preemption()
    try:
      with lock.hold(workdir):
        return _train(config, workdir, init_from, preemption)
    finally:
      preemption.close()


def _train(config, workdir, init_from, preemption) -> train_state.TrainState:
  started = time.time()
  # -------------- mesh, state layout, jitted init and step; num_accumulations=auto
  with faults.out_of_memory(config):  # also what --mode=compile compiles
    config, train, accumulation = auto_accumulation.build(
        config, previous=_previous_accumulation(workdir))
  mesh = train.mesh
  print(f'mesh: {jax.device_count()} devices over {jax.process_count()} processes', flush=True)
  if accumulation:
    console.say(accumulation['line'])

  # ------------------------------------------- evaluation inputs (fail fast)
  evaluator = periodic_eval.PeriodicEval(config, train) if config.eval_every else None

  # ------------------------------------------- create state, or restore it
  mngr = run_checkpoints.manager(workdir / 'checkpoints', max_to_keep=config.max_to_keep)
  guard = collapse_guard.Guard(config, workdir)
  state, start, config = _restore_or_init(config, train, mngr, guard, init_from)
  if start >= config.total_steps:  # a finished workdir: say so, rewrite nothing.
    console.already_trained(config, workdir, start, mngr.all_steps())
    return state
  if jax.process_index() == 0:
    files.write_text(workdir / 'config.json', config.to_json_best_effort(indent=2))

  # -------------- everything jitted that reads the config: step, EMA G, sheet
  programs = Programs.build(config, train)
  out = _Outputs(config, workdir, mngr, guard, start, accumulation)

  # ------------------------------------------------------------ train loop
  with faults.out_of_memory(config, mngr):  # one line, every checkpoint kept
    batches, next_batch = _batches(config, start, mesh)
    compile_seconds = console.compile_step(programs.step, state, next_batch)
    monitor = faults.StepMonitor(mesh)
    steps = bookkeeping.Steps(start, config.total_steps)
    chrono = bookkeeping.Chrono(start)
    for step in steps:
      batch, next_batch = next_batch, None
      state, metrics = programs.step(state, batch)
      finite = metrics.pop('finite')
      if step < config.total_steps:  # prefetch: transfer the next batch during the step
        next_batch = sharding.host_to_global(next(batches), mesh, batch_axis=2)
      bad, preempted = _verdicts(monitor, config, step, finite, preemption.requested)
      due = bookkeeping.due(config, step, preempted=preempted)
      if bad is not None:
        alarm = guard.non_finite(bad, out.best.step)
        if alarm is None:
          mngr.wait_until_finished()
          raise NonFiniteLossError(
              f'step {bad}: the new state is not finite; stopped without saving it; '
              f'the newest checkpoint (step {mngr.latest_step()}) and all before it are finite')
      elif due.log:
        scalars = _scalars(metrics, jax.device_get(state.sv) if due.track else None,
                           chrono.seconds_per_step(step), config)
        out.log(step, scalars)
        console.progress(step, config.total_steps, scalars)
        alarm = guard.observe(step, scalars, out.best.step)
      else:
        alarm = None
      if alarm is not None:  # the collapse guard rolls back, with its remedy applied
        state, config, programs, target = _roll_back(alarm, state, config, mngr, guard, out)
        monitor.reset()
        batches, next_batch = _batches(config, target, mesh)
        steps.rewind(target)
        chrono.reset(target)
        continue
      with chrono.paused():  # what is not training stays out of the logged rate
        if due.sample:
          out.sample_sheet(step, programs, state)
        if due.save:
          out.save(step, programs, state)
        if due.evaluate:
          evaluator.run(step, state, programs.ema_generator(state, step), out)
      if preempted:
        logging.warning('preempted: saved a checkpoint at step %d, exiting', step)
        break

  # ------------------------------------------------------------- the end
  if config.truncations and state.step == config.total_steps:
    out.truncation_sheet(programs, state)
  with faults.checkpoint_errors(mngr.latest_step(), mngr):
    mngr.wait_until_finished()
  out.close(evaluator)
  console.summary(config, workdir, first=start, last=int(state.step),
                  seconds=time.time() - started, compile_seconds=compile_seconds,
                  checkpoint_steps=mngr.all_steps())
  return state


# ---------------------------------------------------------------------------
# The sections' work.
# ---------------------------------------------------------------------------

def _restore_or_init(config, train, mngr, guard, init_from):
  """(state, start step, config): the newest usable checkpoint with the remedies it was
  trained under, else a fresh state (from `init_from`'s weights when given)."""
  state = train.init(jax.random.PRNGKey(config.seed))
  restored = run_checkpoints.restore_newest(mngr, state)  # walks back past unusable ones
  if restored is not None:
    _, state, meta = restored
    logging.info('resumed from step %d', int(meta['data_position']))
    if init_from:
      logging.warning('--init_from=%s ignored: resuming this workdir', init_from)
    return state, int(meta['data_position']), guard.resume(config, meta)
  if init_from:
    state = init_from_lib.initialize(state, config, init_from)
  return state, 0, config


def _previous_accumulation(workdir) -> dict | None:
  """The newest checkpoint's record of num_accumulations=auto (None: a new run, or
  none recorded): a resumed run on the same devices reuses its k."""
  found = run_checkpoints.newest_meta(workdir / 'checkpoints')
  return found[1].get('accumulation') if found else None


def _batches(config, start: int, mesh):
  """The host's batch stream from `start`, and its first batch already on the devices."""
  batches = pipeline.create(config, start)
  return batches, sharding.host_to_global(next(batches), mesh, batch_axis=2)


def _verdicts(monitor, config, step: int, finite, preempted_here: bool):
  """(the first non-finite step or None, any host preempted) from the step verdicts.

  The previous step's verdict is read one step late; this step's too on the
  steps that wait for the device anyway (bookkeeping.due), and when a host was
  preempted, before anything of this step is written.
  """
  verdicts = [monitor.push(step, finite, preempted_here)]
  if bookkeeping.due(config, step).any or (verdicts[0] and verdicts[0].preempted):
    verdicts.append(monitor.current())
  verdicts = [v for v in verdicts if v is not None]
  bad = next((v.step for v in verdicts if not v.finite), None)
  return bad, any(v.preempted for v in verdicts)


def _scalars(metrics, sv, step_time, config):
  """Everything logged at a logging step; `sv` is None between trackings."""
  metrics = jax.device_get(metrics)
  out = {k: float(v) for k, v in metrics.items()}
  for name, values in (sv or {}).items():
    for i, v in enumerate(np.asarray(values)):
      out[f'sv{i}/{name}'] = float(v)
  out.update(lr_g=config.lr_g, lr_d=config.lr_d, steps_per_sec=1.0 / step_time,
             images_per_sec=config.batch_size * config.num_d_steps / step_time)
  return out


def _roll_back(alarm, state, config, mngr, guard, out):
  """To the newest checkpoint before `alarm`, with the remedy applied:
  (state, config, programs rebuilt for that config, the step to go on from)."""
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
  out.rolled_back(config, target)
  return state, config, Programs.build(config, sharded_step.build(config)), target


# ---------------------------------------------------------------------------
# What is jitted besides the step, and what the run writes.
# ---------------------------------------------------------------------------

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


@dataclasses.dataclass(frozen=True)
class Programs:
  """Everything jitted that reads the config, built together: a rollback that changes
  the config rebuilds all of them."""
  config: object
  generator: object
  step: Callable                  # (state, batch) -> (state, metrics)
  _ema: Callable                  # (state, key) -> EMA G variables with standing stats
  _generate: Callable             # (variables, z, y) -> images

  @classmethod
  def build(cls, config, train) -> 'Programs':
    generator = train.generator
    ema_fn = jax.jit(lambda s, k: ema_generator_variables(config, generator, s, k),
                     out_shardings=sharding.replicated(train.mesh))
    generate = jax.jit(lambda v, z, y: generator.apply(v, z, y, train=False))
    return cls(config, generator, train.step, ema_fn, generate)

  def ema_generator(self, state, step: int):
    """The EMA G with standing statistics at `step` (their key depends on the step only)."""
    return self._ema(state, jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 1), step))

  def images(self, state, step: int, z, y):
    return self._generate(self.ema_generator(state, step), z, y)


class _Outputs:
  """What the run writes besides its state: metrics, sheets, plots, checkpoint metas."""

  def __init__(self, config, workdir, mngr, guard, start: int, accumulation: dict | None):
    extras.import_tensorflow()  # before clu does, without TF's start-up notes
    self.config, self.workdir, self.mngr, self.guard = config, workdir, mngr, guard
    self.writer = tensorboard_events.Events(workdir)
    self.jsonl = metrics_log.JsonlWriter(workdir / 'metrics.jsonl', resume_step=start)
    self.best = best_fid.BestFid(workdir / 'best_fid')
    self.sample_inputs = fixed_sample_inputs(config)
    self.accumulation = accumulation

  def log(self, step: int, scalars: dict) -> None:
    self.writer.write_scalars(step, scalars)
    self.jsonl.write(step, scalars)

  def meta(self, step: int) -> dict:
    return {'step': step, 'data_position': step, 'model': self.config.model.to_dict(),
            'kind': run_checkpoints.TRAIN_KIND, **self.guard.meta(),
            **({'accumulation': self.accumulation} if self.accumulation else {})}

  def sample_sheet(self, step: int, programs, state) -> None:
    images = programs.images(state, step, *self.sample_inputs)
    if jax.process_index() == 0:
      images_lib.save_image_grid(images, self.workdir / 'samples' / f'step_{step:07d}.png',
                                 rows=self.config.num_sample_rows)

  def save(self, step: int, programs, state) -> None:
    ema_vars = programs.ema_generator(state, step)
    with faults.checkpoint_errors(step, self.mngr):
      run_checkpoints.save(self.mngr, step, state, ema_vars, self.meta(step))
    self.jsonl.flush()
    self.writer.sync()
    if jax.process_index() == 0:
      plots.plot_training(self.jsonl.path, self.workdir)

  def truncation_sheet(self, programs, state) -> None:
    z, y = truncation_sheet_inputs(self.config)
    images = programs.images(state, self.config.total_steps, z, y)
    if jax.process_index() == 0:
      images_lib.save_truncation_sheet(images, self.workdir / 'truncation.png',
                                       config_lib.truncation_thresholds(self.config))

  def rolled_back(self, config, step: int) -> None:
    """The rows after `step` are not the run's any more; later metas carry `config`."""
    self.config = config
    self.jsonl.truncate(step)

  def close(self, evaluator) -> None:
    self.best.wait_until_finished()
    self.writer.close()
    self.jsonl.flush()
    if evaluator and self.config.eval_heldout_split and jax.process_index() == 0:
      plots.plot_d_overfitting(self.jsonl.path, self.workdir / 'd_overfit.png')
