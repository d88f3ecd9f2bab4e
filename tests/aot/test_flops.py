"""The jaxpr FLOP counter against hand counts: matmuls, convolutions and their
gradients, scans at their trip count, cond's costliest branch."""

import jax
import jax.numpy as jnp

from biggan_jax.aot import flops

NHWC = ('NHWC', 'HWIO', 'NHWC')


def sds(*shape):
  return jax.ShapeDtypeStruct(shape, jnp.float32)


def test_matmul():
  got, notes = flops.count(lambda a, b: a @ b, sds(8, 32), sds(32, 5))
  assert got == 2 * 8 * 32 * 5 and notes == []


def test_scan_counts_its_body_length_times():
  """XLA's cost_analysis counts this body once; the counter, 4 times."""
  body = lambda c, w: (jnp.tanh(c @ w), None)
  f = lambda x, ws: jax.lax.scan(body, x, ws)[0]
  got, _ = flops.count(f, sds(16, 16), sds(4, 16, 16))
  assert got == 4 * 2 * 16**3


def test_cond_takes_the_costliest_branch():
  f = lambda p, x: jax.lax.cond(p, lambda x: x @ x @ x, lambda x: x @ x, x)
  got, _ = flops.count(f, jax.ShapeDtypeStruct((), jnp.bool_), sds(8, 8))
  assert got == 2 * 2 * 8**3


def test_valid_conv_and_its_gradients():
  """A 'VALID' conv: 2 N Ho Wo Cin Cout k^2; its input and kernel gradients cost as much
  again each (lhs-dilated and padded convs whose padding taps count nothing)."""
  conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'VALID', dimension_numbers=NHWC)
  x, k = sds(2, 10, 10, 3), sds(3, 3, 3, 4)
  fwd = 2 * 2 * 8 * 8 * 3 * 4 * 9
  assert flops.count(conv, x, k)[0] == fwd
  loss = lambda x, k: conv(x, k).sum()
  assert flops.count(jax.grad(loss, argnums=(0, 1)), x, k)[0] == 3 * fwd


def test_same_padding_and_stride_count_only_real_taps():
  """'SAME' 3x3 on 4x4: an edge output sees 2 of 3 taps per axis, so 2*16*... not 2*16*9."""
  conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME', dimension_numbers=NHWC)
  taps_per_axis = 2 + 3 + 3 + 2   # 4 outputs: edges see 2 taps, the middle two see 3
  assert flops.count(conv, sds(1, 4, 4, 1), sds(3, 3, 1, 1))[0] == 2 * taps_per_axis**2
  strided = lambda x, k: jax.lax.conv_general_dilated(x, k, (2, 2), 'SAME',
                                                      dimension_numbers=NHWC)
  fwd = flops.count(strided, sds(1, 8, 8, 2), sds(3, 3, 2, 2))[0]
  # Input gradient: lhs-dilated conv whose holes must not count; total = 3 x forward.
  grad = jax.grad(lambda x, k: strided(x, k).sum(), argnums=(0, 1))
  assert flops.count(grad, sds(1, 8, 8, 2), sds(3, 3, 2, 2))[0] == 3 * fwd


def test_jit_and_remat_are_recursed_into():
  inner = jax.checkpoint(lambda a: a @ a)
  got, _ = flops.count(jax.jit(lambda a: inner(a) @ a), sds(4, 4))
  assert got == 2 * 2 * 4**3
