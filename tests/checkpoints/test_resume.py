"""Resuming a workdir with another model: one line with the fields and the overrides."""

import jax.numpy as jnp
import pytest

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import resume
from biggan_jax.checkpoints import run_checkpoints
from paths import REPO


def tiny_config():
  return config_lib.from_file(REPO / 'configs' / 'tiny.py')


def saved_run(workdir, model, kind=run_checkpoints.TRAIN_KIND):
  """A checkpoint whose meta is a training run's (the arrays do not matter here)."""
  mngr = run_checkpoints.manager(workdir / 'checkpoints')
  run_checkpoints.save(mngr, 2, {'w': jnp.zeros(3)}, {'w': jnp.zeros(1)},
                  {'step': 2, 'kind': kind, 'model': model})
  mngr.wait_until_finished()


def test_a_new_workdir_resumes_nothing(tmp_path):
  assert resume.check(tiny_config(), tmp_path) is None


def test_the_same_model_resumes(tmp_path):
  saved_run(tmp_path, tiny_config().model.to_dict())
  assert resume.check(tiny_config(), tmp_path) == 2


def test_another_architecture_is_one_line_naming_fields_and_overrides(tmp_path):
  saved_run(tmp_path, tiny_config().model.to_dict())
  config = tiny_config()
  config.model.ch = 8  # the issue's --config.model.ch=8
  with pytest.raises(run_checkpoints.CheckpointError) as error:
    resume.check(config, tmp_path)
  assert str(error.value) == (
      f"--workdir={tmp_path} resumes checkpoint 2, whose model differs from the config's "
      'in model.ch (4 there, 8 here), model.d_ch (4 there, 8 here); use '
      '--config=configs/tiny.py or add --config.model.ch=4 --config.model.d_ch=4 '
      '(or train in a new --workdir)')


def test_other_settings_only_warn(tmp_path, caplog):
  saved_run(tmp_path, tiny_config().model.to_dict())
  config = tiny_config()
  config.model.bn_eps = 1e-4
  assert resume.check(config, tmp_path) == 2
  assert any('model.bn_eps 1e-05 -> 0.0001' in r.getMessage() for r in caplog.records)


def test_not_a_training_checkpoint(tmp_path):
  saved_run(tmp_path, {}, kind='something else')
  with pytest.raises(run_checkpoints.CheckpointError, match='not a biggan_jax training checkpoint'):
    resume.check(tiny_config(), tmp_path)
