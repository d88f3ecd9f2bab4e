"""Model FLOPs of a jitted function, counted from its jaxpr with loops at their trip counts.

XLA's cost_analysis() counts a while loop's body once, so a step with
`num_accumulations` micro-batches (a lax.scan) is under-counted by that
factor; jax.experimental.roofline recurses into a scan body once too and
skips lax.cond. This counter (hand-written for that reason) walks the jaxpr:
- dot_general: 2 x |output| x the contracted size;
- conv_general_dilated: 2 x multiply-adds at kernel taps that land on a real
  input element (padding and the holes of lhs_dilation, how strided convs'
  input gradients are written, count nothing: jax.experimental.roofline's rule);
- scan: its body x `length`; cond: the costliest branch; while: the body once,
  noted, since its trip count is not in the jaxpr (the singular-value
  tracker's Lanczos fori_loops are unrolled by jax; its SVD and eigh custom
  calls count nothing);
- every other primitive holding a jaxpr (pjit, remat, custom_vjp, ...) by
  recursion. Elementwise work is not counted: these are matmul/conv FLOPs,
  the ones peak FLOP/s refers to.
"""

import math

import jax
import numpy as np
from jax.extend import core as jex_core


def count(fn, *args) -> tuple[int, list[str]]:
  """(global FLOPs of one call of `fn(*args)`, notes); args may be ShapeDtypeStructs."""
  notes = []
  return jaxpr_flops(jax.make_jaxpr(fn)(*args), notes), sorted(set(notes))


def jaxpr_flops(jaxpr, notes: list[str]) -> int:
  jaxpr = getattr(jaxpr, 'jaxpr', jaxpr)
  total = 0
  for eqn in jaxpr.eqns:
    name, p = eqn.primitive.name, eqn.params
    if name == 'dot_general':
      (contracting, _), _ = p['dimension_numbers']
      lhs = eqn.invars[0].aval.shape
      total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in contracting)
    elif name == 'conv_general_dilated':
      total += _conv_flops(eqn)
    elif name == 'scan':
      total += p['length'] * jaxpr_flops(p['jaxpr'], notes)
    elif name == 'cond':
      total += max(jaxpr_flops(b, notes) for b in p['branches'])
    elif name == 'while':
      notes.append('a while loop: its body is counted once (trip count unknown)')
      total += jaxpr_flops(p['body_jaxpr'], notes) + jaxpr_flops(p['cond_jaxpr'], notes)
    else:
      for sub in _sub_jaxprs(p):
        total += jaxpr_flops(sub, notes)
  return total


def _sub_jaxprs(params):
  for v in params.values():
    for x in (v if isinstance(v, (tuple, list)) else (v,)):
      if isinstance(x, (jex_core.ClosedJaxpr, jex_core.Jaxpr)):
        yield x


def _valid_taps(n_in, n_out, k, stride, pad_lo, lhs_dil, rhs_dil) -> int:
  """(output position, kernel tap) pairs of one spatial axis that read a real input."""
  pos = (np.arange(n_out)[:, None] * stride + np.arange(k)[None, :] * rhs_dil - pad_lo)
  return int(np.sum((pos >= 0) & (pos <= (n_in - 1) * lhs_dil) & (pos % lhs_dil == 0)))


def _conv_flops(eqn) -> int:
  p = eqn.params
  lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
  out = eqn.outvars[0].aval.shape
  dn = p['dimension_numbers']  # ConvDimensionNumbers: (batch, feature, spatial...) indices
  taps = 1
  for i, (l, r, o) in enumerate(zip(dn.lhs_spec[2:], dn.rhs_spec[2:], dn.out_spec[2:])):
    taps *= _valid_taps(lhs[l], out[o], rhs[r], p['window_strides'][i], p['padding'][i][0],
                        p['lhs_dilation'][i], p['rhs_dilation'][i])
  out_batch = lhs[dn.lhs_spec[0]] // p['batch_group_count']
  return 2 * out_batch * out[dn.out_spec[1]] * rhs[dn.rhs_spec[1]] * taps
