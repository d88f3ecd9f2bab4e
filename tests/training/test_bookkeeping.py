"""The loop's bookkeeping: when each periodic task is due, the steps, the timer."""

import time

from biggan_jax import config as config_lib
from biggan_jax.training import bookkeeping
from paths import REPO


def tiny(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'tiny.py', **overrides)


def test_itstime_every_n_steps_and_the_last():
  assert [s for s in range(1, 11) if bookkeeping.itstime(s, 4, 10)] == [4, 8, 10]
  assert [s for s in range(1, 11) if bookkeeping.itstime(s, 4, 10, last=False)] == [4, 8]
  assert not any(bookkeeping.itstime(s, 0, 10) for s in range(1, 11))  # 0: never


def test_the_steps_the_loop_waits_for_are_every_tasks_steps():
  """The fault monitor reads a step's verdict at once on exactly these (training/faults.py)."""
  config = tiny(total_steps=100, log_every=10, sv_every=25, checkpoint_every=40, sample_every=0)
  synced = [s for s in range(1, 101) if bookkeeping.due(config, s).any]
  assert synced == [10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100]


def test_what_each_step_does():
  config = tiny(total_steps=10, log_every=3, sv_every=4, checkpoint_every=5, sample_every=2,
                eval_every=7)
  due = {s: bookkeeping.due(config, s) for s in range(1, 11)}
  assert [s for s, d in due.items() if d.track] == [4, 8]            # not at the end
  assert [s for s, d in due.items() if d.save] == [5, 10]
  assert [s for s, d in due.items() if d.sample] == [2, 4, 6, 8, 10]
  assert [s for s, d in due.items() if d.evaluate] == [7, 10]
  # A tracking or saving step logs too: its singular values and losses are written.
  assert [s for s, d in due.items() if d.log] == [3, 4, 5, 6, 8, 9, 10]


def test_a_preempted_step_logs_samples_and_saves_as_the_last_but_does_not_evaluate():
  config = tiny(total_steps=100, log_every=10, sv_every=25, checkpoint_every=40,
                sample_every=20, eval_every=7)
  assert bookkeeping.due(config, 7, preempted=True) == bookkeeping.Due(
      log=True, track=False, sample=True, save=True, evaluate=False)
  assert bookkeeping.due(config, 13) == bookkeeping.Due(
      log=False, track=False, sample=False, save=False, evaluate=False)


def test_steps_rewind():
  steps = bookkeeping.Steps(2, 6)
  seen = []
  for s in steps:
    seen.append(s)
    if s == 5 and len(seen) < 5:
      steps.rewind(3)
  assert seen == [3, 4, 5, 4, 5, 6]


def test_chrono_leaves_out_what_it_is_paused_around():
  chrono = bookkeeping.Chrono(0)
  time.sleep(0.05)
  with chrono.paused():
    time.sleep(0.3)
  per_step = chrono.seconds_per_step(2)
  assert 0.02 <= per_step < 0.1  # (0.05 s of steps) / 2, not (0.35 s) / 2
  with chrono.paused():
    time.sleep(0.2)
  chrono.reset(10)  # a rollback: counting starts again, the pause before it forgotten
  time.sleep(0.04)
  assert 0.03 <= chrono.seconds_per_step(11) < 0.1
