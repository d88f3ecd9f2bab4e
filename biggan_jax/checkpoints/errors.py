"""Checkpoint errors, and Orbax's failures told in one line."""

import gc
import re
import sys


class CheckpointError(ValueError):
  """A checkpoint that cannot be used; the message says what is wrong."""


def describe_error(error: BaseException) -> str:
  """One short line for an Orbax/TensorStore error, whose own text is a page.

  Prefers a status line from the cause chain ('OUT_OF_RANGE: Error reading ...'
  for a truncated file).
  """
  chain, e = [], error
  while e is not None and len(chain) < 8:
    chain.append(e)
    e = e.__cause__ or e.__context__
  for e in chain:
    first = str(e).strip().split('\n', 1)[0]
    if re.match(r'[A-Z][A-Z_]+: ', first):
      return first[:300]
  first = str(error).strip().split('\n', 1)[0]
  if 'tree structures do not match' in first:  # Orbax's text goes on for pages.
    return ("its training state holds other entries than this run's (written by another "
            'biggan_jax version, or with options that add state such as augment_adaptive)')
  return f'{type(error).__name__}: {first[:300]}'


def collect_failed_reads() -> None:
  """Frees the array reads a failed Orbax restore abandons, quietly.

  When one read fails (a truncated file), Orbax's other per-array coroutines
  are left suspended; garbage-collected later, each prints a page of
  TensorStore spec to stderr. Collected here, once the error's traceback is
  gone, they go silently, and the CLIs' one-line error stays one line.
  """
  hook = sys.unraisablehook
  sys.unraisablehook = lambda unraisable: None
  try:
    gc.collect()
  finally:
    sys.unraisablehook = hook
