"""The collapse guard's detector and remedies on made-up series (the loop test forces a
real divergence: tests/training/test_loop_resume.py)."""

import ml_collections
import pytest

from biggan_jax import config as config_lib
from biggan_jax.training import collapse_guard


def guard_config(**overrides):
  g = config_lib.base_config().collapse_guard
  g.update({"start": 0, **overrides})
  return g


def rows(d_losses, sigma0=None, every=10):
  """Logged scalars: D loss per logging step; G's σ0 of one layer at each tracking."""
  out = []
  for i, d in enumerate(d_losses):
    row = {'d_loss_real': d / 2, 'd_loss_fake': d / 2}
    if sigma0 is not None and sigma0[i] is not None:
      row['sv0/G/linear/kernel'] = sigma0[i]
      row['sv0/G/block0/conv1/kernel'] = 1.0
    out.append(((i + 1) * every, row))
  return out


def alarms(series, **overrides):
  detector = collapse_guard.Detector(guard_config(**overrides))
  return [a for a in (detector.observe(step, row) for step, row in series) if a]


def test_a_healthy_run_raises_nothing():
  # σ0 doubling every 1,000 steps and a noisy D loss: normal training.
  sigma0 = [1.0 * 2 ** (i / 100) for i in range(300)]
  d = [1.0 + 0.3 * ((i * 7919) % 11 - 5) / 5 for i in range(300)]
  assert alarms(rows(d, sigma0)) == []


def test_sigma0_growth_raises_an_alarm_naming_the_layer():
  sigma0 = [1.0] * 150 + [1.0 * 3 ** (i + 1) for i in range(5)]  # x3 every 10 steps
  [first, *_] = alarms(rows([1.0] * 155, sigma0))
  # x9 > 8 at step 1520 against step 520, the oldest tracking of the 1,000-step window
  assert first.step == 1520 and first.last_healthy == 1510
  assert first.reason == ('σ0 of G/linear/kernel grew 9x in 1000 steps, from 1 to 9 '
                          '(collapse_guard.sigma0_growth=8.0 within sigma0_window=1000 steps)')


def test_a_d_loss_jump_needs_patience_and_names_its_onset():
  d = [0.5] * 40 + [2.5, 0.5] + [0.5] * 10 + [2.5] * 5
  [alarm] = alarms(rows(d))
  # one spike (step 410) is noise; two in a row (530, 540) are a jump, and one alarm
  assert alarm.step == 540 and alarm.last_healthy == 520
  assert alarm.reason == ('D loss 2.5 stayed above its running median 0.5 by more than '
                          'collapse_guard.d_loss_jump=1.0 for 2 logging steps (since step 530)')


def test_nothing_before_start():
  sigma0 = [1.0] * 5 + [100.0] * 5
  assert alarms(rows([0.5] * 5 + [3.0] * 5, sigma0), start=1000) == []


def make_guard(tmp_path, **overrides):
  config = config_lib.base_config()
  config.collapse_guard.update(overrides)
  return config, collapse_guard.Guard(config, tmp_path)


def test_warn_logs_and_goes_on(tmp_path):
  _, guard = make_guard(tmp_path, remedy='warn')
  alarm = collapse_guard.Alarm(100, 'σ0 grew', 90)
  assert guard.decide(alarm) is None
  assert '"action": "warn"' in (tmp_path / 'collapse_guard.jsonl').read_text()


def test_stop_is_one_line_naming_best_fid(tmp_path):
  _, guard = make_guard(tmp_path, remedy='stop')
  with pytest.raises(collapse_guard.CollapseError) as error:
    guard.decide(collapse_guard.Alarm(100, 'σ0 grew', 90), best_fid_step=80)
  assert str(error.value) == ('collapse guard: step 100: σ0 grew; stopped '
                              '(collapse_guard.remedy=stop); best_fid/ keeps step 80; the '
                              'checkpoints are kept')


@pytest.mark.parametrize('remedy,r1,expected', [
    ('lower_lr', False, {'lr_g': 2.5e-5, 'lr_d': 1e-4}),
    ('raise_r1', False, {'r1': True}),
    ('raise_r1', True, {'r1_gamma': 100.0}),
])
def test_rollback_remedies_change_the_config_and_persist(remedy, r1, expected, tmp_path):
  config, guard = make_guard(tmp_path, remedy=remedy)
  config.r1 = r1
  alarm = collapse_guard.Alarm(100, 'σ0 grew', 90)
  assert guard.decide(alarm) is alarm
  new = guard.rolled_back(config, alarm, 80)
  assert {k: new[k] for k in expected} == expected
  assert config.lr_g == 5e-5  # the old config is left as it was
  # A resumed run reads them back from the checkpoint's meta.
  _, resumed = make_guard(tmp_path, remedy=remedy)
  again = resumed.resume(config, guard.meta())
  assert {k: again[k] for k in expected} == expected and resumed.rollbacks == 1


def test_rollbacks_are_bounded(tmp_path):
  config, guard = make_guard(tmp_path, remedy='lower_lr', max_rollbacks=1)
  alarm = collapse_guard.Alarm(100, 'σ0 grew', 90)
  guard.rolled_back(config, guard.decide(alarm), 80)
  with pytest.raises(collapse_guard.CollapseError, match='1 rollbacks already'):
    guard.decide(alarm)


def test_rollback_goes_to_the_newest_checkpoint_before_the_signals():
  alarm = collapse_guard.Alarm(100, 'x', 79)
  assert collapse_guard.rollback_step([40, 60, 80, 100], alarm) == 60
  assert collapse_guard.rollback_step([80, 100], alarm) is None


def test_non_finite_rolls_back_only_with_a_rollback_remedy(tmp_path):
  _, warn = make_guard(tmp_path, remedy='warn')
  assert warn.non_finite(7) is None
  _, lower = make_guard(tmp_path, remedy='lower_lr')
  alarm = lower.non_finite(7)
  assert alarm.step == 7 and alarm.last_healthy == 0  # nothing observed yet
