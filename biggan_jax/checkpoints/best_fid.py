"""WORKDIR/best_fid/: the EMA generator with the lowest FID of a run, kept apart."""

import math

from etils import epath
import orbax.checkpoint as ocp

from absl import logging

from biggan_jax.checkpoints import errors, integrity, run_checkpoints

class BestFid:
  """WORKDIR/best_fid/<step>/{ema_generator,meta}: the EMA G with the lowest FID so far.

  The paper reports scores from before training collapses (Sec. 4.2), so that
  checkpoint is kept apart from the rolling ones, which max_to_keep deletes.
  Orbax writes each step under a temporary name and renames it into place;
  max_to_keep=1 removes the previous best only after the new one is complete.
  meta carries the step, its fid and the eval protocol; a resumed run reads
  the best FID back. `biggan_jax.load_generator('WORKDIR/best_fid')` opens it.
  Its meta holds the EMA G's checksums, verified when it is loaded; a best
  whose meta cannot be read is moved to skipped_checkpoints/ (never deleted)
  and the run keeps the next best FID instead.
  """

  def __init__(self, directory: epath.Path):
    self.directory = directory
    self.mngr = None
    self.step, self.fid = None, math.inf
    if directory.exists():
      self.mngr = run_checkpoints.manager(directory, max_to_keep=1)
      self.step = self.mngr.latest_step()
    if self.step is not None:
      try:
        meta = self.mngr.restore(self.step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))['meta']
        self.fid = float(meta['fid'])
      except Exception as e:  # Orbax raises many kinds; a torn meta is a ValueError.
        reason = f'its meta cannot be read ({errors.describe_error(e)})'
        logging.warning('best_fid/%d: %s', self.step, reason)
        run_checkpoints.set_aside(self.mngr, self.step, f'best_fid: {reason}')
        self.step = self.mngr.latest_step()

  def maybe_save(self, step: int, fid: float, ema_vars, meta: dict) -> bool:
    """Saves when `fid` beats the best so far (and `step` is newer); True if saved."""
    if not fid < self.fid or (self.step is not None and step <= self.step):
      return False
    if self.mngr is None:
      self.mngr = run_checkpoints.manager(self.directory, max_to_keep=1)
    self.mngr.save(step, args=ocp.args.Composite(
        ema_generator=ocp.args.StandardSave(ema_vars),
        meta=ocp.args.JsonSave({**meta, 'fid': fid, 'checksums': {
            'ema_generator': integrity.checksums(ema_vars)}})))
    self.step, self.fid = step, fid
    return True

  def wait_until_finished(self):
    if self.mngr is not None:
      self.mngr.wait_until_finished()
