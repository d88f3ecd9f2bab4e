"""The loop's bookkeeping: which periodic tasks a step is due for, the steps, the timer.

- `itstime` (big_vision's `u.itstime`) is the one rule for a periodic task,
  and `due` applies it to every task of the loop (log, singular-value
  tracking, sample sheet, checkpoint, evaluation): the loop and the fault
  monitor (training/faults.py: which steps' verdicts are read at once) ask it.
- `Steps` counts start + 1 .. total and rewinds after a rollback.
- `Chrono` times the steps and leaves out what it is paused around (saves,
  sample sheets, evaluations), so the logged rate is the step's (big_vision's
  `u.chrono`, stylegan2-ada's `maintenance_time`).
"""

import contextlib
import dataclasses
import time


def itstime(step: int, every: int, total: int, *, last: bool = True) -> bool:
  """A task done every `every` steps (0: never) is due at `step`; with `last`, also
  at `total`, the run's last step."""
  return bool(every) and (step % every == 0 or (last and step == total))


@dataclasses.dataclass(frozen=True)
class Due:
  """The loop's periodic tasks at one step."""
  log: bool
  track: bool     # the step tracked singular values (training/step.py's sv_every)
  sample: bool
  save: bool
  evaluate: bool

  @property
  def any(self) -> bool:
    return self.log or self.track or self.sample or self.save or self.evaluate


def due(config, step: int, *, preempted: bool = False) -> Due:
  """What `step` does besides training. A preempted step is the last this run
  takes: it logs, samples and saves as the last step does, and skips evaluation."""
  end = step if preempted else config.total_steps
  track = itstime(step, config.sv_every, end, last=False)
  save = itstime(step, config.checkpoint_every, end)
  return Due(log=itstime(step, config.log_every, end) or track or save, track=track,
             sample=itstime(step, config.sample_every, end), save=save,
             evaluate=not preempted and itstime(step, config.eval_every, config.total_steps))


class Steps:
  """The loop's steps start + 1 .. total; `rewind(s)` makes the next one s + 1 (a rollback)."""

  def __init__(self, start: int, total: int):
    self.last, self.total = start, total

  def __iter__(self):
    return self

  def __next__(self) -> int:
    if self.last >= self.total:
      raise StopIteration
    self.last += 1
    return self.last

  def rewind(self, step: int) -> None:
    self.last = step


class Chrono:
  """Seconds per step since the last reading, without the time spent `paused()`."""

  def __init__(self, step: int):
    self.reset(step)

  def reset(self, step: int) -> None:
    """Counts from now and `step` (the start, or the step a rollback went back to)."""
    self._time, self._step, self._paused = time.time(), step, 0.0

  @contextlib.contextmanager
  def paused(self):
    start = time.time()
    try:
      yield
    finally:
      self._paused += time.time() - start

  def seconds_per_step(self, step: int) -> float:
    """Since the last reading (or reset); the next reading counts from here."""
    now = time.time()
    seconds = (now - self._time - self._paused) / max(step - self._step, 1)
    self._time, self._step, self._paused = now, step, 0.0
    return seconds
