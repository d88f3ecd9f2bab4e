"""Evaluation: the FID Inception, feature statistics, FID/IS/PR/DC, the protocol, the paper's figures."""


class EvaluationError(ValueError):
  """Reference statistics or Inception weights that cannot be used; one line says why."""
