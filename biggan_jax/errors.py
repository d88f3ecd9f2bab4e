"""The base of the errors that stop a run: the message is the one line the user sees.

Its own module at the bottom of the package, so that storage (checkpoints/lock.py),
the compile tooling (aot/) and training raise the same kind, and the CLI names it
(exit code 2) before anything is built.
"""


class TrainingError(RuntimeError):
  """A run that cannot go on; the message is the one line the user sees."""
