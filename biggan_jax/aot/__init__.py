"""Ahead-of-time compilation: what the TPU compiler says of a step before any slice is rented.

- topologies.py: Cloud TPU slices as libtpu sees them, the chips' published
  peaks, the HBM a program may use, libtpu's out-of-memory text parsed;
- flops.py: FLOPs counted from a jaxpr with loops at their trip counts;
- report.py: a lowered step compiled for a slice's compile-only devices, the
  compiler's memory verdict, a roofline time estimate and the printed table.

It knows nothing of how the step is built: training/compile_check.py builds
the train step (training/sharded_step.py) and hands it over, so training may
import this package and not the other way round.
"""

from biggan_jax.errors import TrainingError


class CompileError(TrainingError):
  """No TPU compiler, a step that does not fit, or a compiler failure: the one
  line the user sees."""
