"""checkpoints/training.py: a manager for restoring says nothing and creates nothing."""

import logging

import orbax.checkpoint as ocp

from biggan_jax.checkpoints import training as checkpoint


def test_read_only_manager_does_not_warn_read_only(tmp_path, caplog):
  (tmp_path / 'checkpoints').mkdir()
  with caplog.at_level(logging.INFO):
    ocp.CheckpointManager(str(tmp_path / 'checkpoints'),
                          options=ocp.CheckpointManagerOptions(read_only=True)).close()
  assert 'read only' in caplog.text  # Orbax's own option warns on a writable directory
  caplog.clear()
  with caplog.at_level(logging.INFO):
    checkpoint.manager(tmp_path / 'checkpoints', read_only=True).close()
  assert 'read only' not in caplog.text
  assert not (tmp_path / 'missing').exists()
  checkpoint.manager(tmp_path / 'missing', read_only=True).close()
  assert not (tmp_path / 'missing').exists()
