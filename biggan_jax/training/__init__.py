"""Training: the loop, the step, the state, losses, regularisers, EMA, spectra, sharding.

Kept import-light (no JAX here), so the CLI can name `TrainingError` before
anything is built.
"""


class TrainingError(RuntimeError):
  """A run that cannot go on; the message is the one line the user sees."""
