"""The collapse guard: watch for the signs the paper names, roll back and remedy.

Brock et al. 2019, Sec. 4: training collapse is announced by G's top
singular values growing and then exploding (Sec. 4.1, Fig. 3, the first
linear layer especially) and by D's loss, near zero for most of training,
jumping up (Sec. 4.2). The guard watches both in what the loop logs:
- σ0 of every G weight at each tracking step (every sv_every steps): an
  alarm when one is more than `sigma0_growth` times its value at the oldest
  tracking of the last `sigma0_window` steps (the rollback then goes to
  before the previous tracking, which had not crossed the line);
- D's loss (d_loss_real + d_loss_fake) at each logging step: an alarm when it
  sits more than `d_loss_jump` above the median of its last `d_loss_window`
  values for `patience` logging steps in a row;
both only from step `start` on, and a non-finite state at any step.

On an alarm, `remedy` says what to do: 'warn' logs it and goes on; 'stop'
ends the run with one line (best_fid/ keeps the best EMA G); 'lower_lr'
(lr_g and lr_d times `lr_factor`) and 'raise_r1' (R1 on, or r1_gamma times
`r1_gamma_factor`) roll back to the newest checkpoint from before the alarm
(the checkpoints after it are set aside in skipped_checkpoints/, not
deleted), change the config and go on, at most `max_rollbacks` times. The
changed values are stored in every later checkpoint's meta, so a resumed
run keeps them. Every alarm and action is a line in the log and a row of
WORKDIR/collapse_guard.jsonl. The defaults and how they were calibrated are
in docs/reliability.md.
"""

import collections
import dataclasses
import json

import jax
import numpy as np
from absl import logging
from etils import epath

from biggan_jax import errors
from biggan_jax.utils import files

ROLLBACK_REMEDIES = ('lower_lr', 'raise_r1')
META_KEY = 'collapse_guard'


class CollapseError(errors.TrainingError):
  """The guard stopped the run; the message says why and what is kept."""


@dataclasses.dataclass(frozen=True)
class Alarm:
  step: int           # the step whose numbers raised it
  reason: str         # one line
  last_healthy: int   # the newest step the signals still looked healthy at


class Detector:
  """σ0-growth and D-loss-jump alarms from the loop's logged scalars."""

  def __init__(self, guard):
    self.guard = guard
    self.reset(0)

  def reset(self, step: int) -> None:
    """Forgets the history (after a rollback to `step`)."""
    self.sigma0 = collections.deque()  # (step, {name: σ0}) of the trackings in the window
    self.d_losses = collections.deque(maxlen=self.guard.d_loss_window)
    self.over = []                    # steps in a row above the D-loss threshold
    self.last_healthy = step

  def _sigma0_alarm(self, step, scalars) -> str | None:
    values = {k[len('sv0/G/'):]: v for k, v in scalars.items() if k.startswith('sv0/G/')}
    if not values:
      return None
    window = self.guard.sigma0_window
    while self.sigma0 and self.sigma0[0][0] < step - window:
      self.sigma0.popleft()
    reference = self.sigma0[0] if self.sigma0 else None
    self.sigma0.append((step, values))
    if reference is None or step < self.guard.start:
      return None
    ref_step, ref = reference
    ratios = {name: v / ref[name] for name, v in values.items() if ref.get(name, 0) > 0}
    name = max(ratios, key=ratios.get, default=None)
    if name is not None and ratios[name] > self.guard.sigma0_growth:
      return (f'σ0 of G/{name} grew {ratios[name]:.3g}x in {step - ref_step} steps, from '
              f'{ref[name]:.4g} to {values[name]:.4g} (collapse_guard.sigma0_growth='
              f'{self.guard.sigma0_growth} within sigma0_window={window} steps)')
    return None

  def _d_loss_alarm(self, step, scalars) -> str | None:
    if 'd_loss_real' not in scalars or 'd_loss_fake' not in scalars:
      return None
    d = scalars['d_loss_real'] + scalars['d_loss_fake']
    armed = step >= self.guard.start and len(self.d_losses) >= self.guard.d_loss_window // 2
    baseline = float(np.median(self.d_losses)) if self.d_losses else d
    if armed and d > baseline + self.guard.d_loss_jump:
      self.over.append(step)
      if len(self.over) >= self.guard.patience:
        return (f'D loss {d:.4g} stayed above its running median {baseline:.4g} by more '
                f'than collapse_guard.d_loss_jump={self.guard.d_loss_jump} for '
                f'{len(self.over)} logging steps (since step {self.over[0]})')
      return None
    self.over = []
    self.d_losses.append(d)
    return None

  def observe(self, step: int, scalars: dict) -> Alarm | None:
    """Feeds one logging step's scalars; an Alarm when a signal fires."""
    previous_tracking = self.sigma0[-1][0] if self.sigma0 else step
    sigma0 = self._sigma0_alarm(step, scalars)
    d_loss = self._d_loss_alarm(step, scalars)
    if not (sigma0 or d_loss):
      if not self.over:
        self.last_healthy = step
      return None
    last_healthy = self.last_healthy
    if sigma0:  # σ0 grew after the previous tracking
      last_healthy = min(last_healthy, previous_tracking)
    if d_loss:  # the new level becomes the baseline (re-armed after d_loss_window / 2)
      self.d_losses.clear()
      self.d_losses.extend([scalars['d_loss_real'] + scalars['d_loss_fake']] * len(self.over))
      self.over = []
    return Alarm(step, '; '.join(r for r in (sigma0, d_loss) if r), last_healthy)


class Guard:
  """The detector, the remedy and its bookkeeping for one run."""

  def __init__(self, config, workdir):
    self.guard = config.collapse_guard
    self.remedy = self.guard.remedy
    self.detector = Detector(self.guard)
    self.events = epath.Path(workdir) / 'collapse_guard.jsonl'
    self.overrides = {}               # config values the remedies changed
    self.rollbacks = 0

  @property
  def active(self) -> bool:
    return self.remedy != 'off'

  def resume(self, config, meta: dict):
    """The config with the remedies a resumed checkpoint was trained under."""
    saved = meta.get(META_KEY) or {}
    self.overrides = dict(saved.get('overrides') or {})
    self.rollbacks = int(saved.get('rollbacks', 0))
    if self.overrides:
      logging.warning('collapse guard: resuming with %s (set by earlier rollbacks)',
                      _fmt(self.overrides))
    return _with(config, self.overrides)

  def meta(self) -> dict:
    """What every checkpoint's meta carries, so that a resumed run keeps the remedies."""
    return {META_KEY: {'overrides': self.overrides, 'rollbacks': self.rollbacks}}

  def _log(self, **row) -> None:
    if jax.process_index() == 0:
      files.append_line(self.events, json.dumps(row))

  def decide(self, alarm: Alarm, best_fid_step=None) -> Alarm | None:
    """Logs the alarm and acts: None to go on, the alarm back to roll back, or CollapseError."""
    logging.warning('collapse guard: step %d: %s', alarm.step, alarm.reason)
    if self.remedy == 'warn':
      self._log(step=alarm.step, reason=alarm.reason, action='warn')
      return None
    if self.remedy == 'stop' or self.rollbacks >= self.guard.max_rollbacks:
      why = ('collapse_guard.remedy=stop' if self.remedy == 'stop' else
             f'{self.rollbacks} rollbacks already (collapse_guard.max_rollbacks)')
      kept = (f'; best_fid/ keeps step {best_fid_step}' if best_fid_step is not None else '')
      self._log(step=alarm.step, reason=alarm.reason, action='stop')
      raise CollapseError(f'collapse guard: step {alarm.step}: {alarm.reason}; stopped '
                          f'({why}){kept}; the checkpoints are kept')
    return alarm

  def observe(self, step: int, scalars: dict, best_fid_step=None) -> Alarm | None:
    """One logging step; an Alarm to roll back for, or None."""
    if not self.active:
      return None
    alarm = self.detector.observe(step, scalars)
    return None if alarm is None else self.decide(alarm, best_fid_step)

  def non_finite(self, step: int, best_fid_step=None) -> Alarm | None:
    """A non-finite state at `step`: an Alarm to roll back for, or None (then the loop stops)."""
    if self.remedy not in ROLLBACK_REMEDIES:
      return None
    alarm = Alarm(step, 'the new state is not finite',
                  min(self.detector.last_healthy, step - 1))
    return self.decide(alarm, best_fid_step)

  def rolled_back(self, config, alarm: Alarm, restored_step: int):
    """Applies the remedy after a rollback to `restored_step`; returns the new config."""
    self.rollbacks += 1
    g = self.guard
    if self.remedy == 'lower_lr':
      changes = {'lr_g': config.lr_g * g.lr_factor, 'lr_d': config.lr_d * g.lr_factor}
    else:
      changes = ({'r1_gamma': config.r1_gamma * g.r1_gamma_factor} if config.r1
                 else {'r1': True})
    self.overrides.update(changes)
    self.detector.reset(restored_step)
    logging.warning('collapse guard: rolled back to step %d (rollback %d of at most %d), '
                    'now %s', restored_step, self.rollbacks, g.max_rollbacks, _fmt(changes))
    self._log(step=alarm.step, reason=alarm.reason, action=self.remedy,
              rolled_back_to=restored_step, overrides=self.overrides)
    return _with(config, self.overrides)


def _fmt(values: dict) -> str:
  return ', '.join(f'{k}={v:.6g}' if isinstance(v, float) else f'{k}={v}'
                   for k, v in sorted(values.items()))


def _with(config, overrides: dict):
  if not overrides:
    return config
  config = config.copy_and_resolve_references()
  for key, value in overrides.items():
    config[key] = value
  return config


def rollback_step(steps, alarm: Alarm) -> int | None:
  """The newest of the checkpoint `steps` from before the alarm's signals, or None."""
  older = [s for s in steps if s <= alarm.last_healthy]
  return max(older) if older else None
