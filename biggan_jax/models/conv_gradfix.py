"""A workaround for XLA:CPU's convolution gradients, kept apart behind one switch.

Inside the train step XLA:CPU lowers the gradients of a stride-1 'SAME'
convolution to convolutions its fast path (YNNPACK) does not take: the kernel
gradient as an HxW-window convolution over a batch-minor layout, the input
gradient with the kernel's transpose folded into the dimension numbers.
`conv_same` computes the same values and gradients as lax.conv_general_dilated,
the input gradient as a forward convolution with the flipped kernel written out,
the kernel gradient as one matmul per kernel tap over cache-sized batch chunks
(benchmarks/README.md has the measurements). It is on
for the CPU backend only: GPUs and TPUs have fast native convolution gradients
(cuDNN, the MXU), and aot/report.py traces TPU programs with it off. As
stylegan2-ada-pytorch keeps its conv2d_gradfix.
"""

import os

import jax
import jax.numpy as jnp

Array = jax.Array

_NHWC = ('NHWC', 'HWIO', 'NHWC')

# The switch: None uses the matmul kernel gradient on CPU only; True / False
# force it on or off everywhere (BIGGAN_JAX_CONV_GRADFIX=1 / 0 at import).
ENABLED: bool | None = {'1': True, '0': False}.get(os.environ.get('BIGGAN_JAX_CONV_GRADFIX', ''))


def enabled() -> bool:
  return jax.default_backend() == 'cpu' if ENABLED is None else ENABLED


def conv_same(x: Array, kernel: Array) -> Array:
  """Stride-1 'SAME' NHWC/HWIO convolution, with the workaround's gradient where enabled."""
  return _conv_same_gradfix(x, kernel) if enabled() else _conv_same(x, kernel)


def _conv_same(x: Array, kernel: Array) -> Array:
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=_NHWC)


@jax.custom_vjp
def _conv_same_gradfix(x: Array, kernel: Array) -> Array:
  return _conv_same(x, kernel)


def _conv_same_fwd(x, kernel):
  return _conv_same(x, kernel), (x, kernel)


def _conv_same_bwd(residuals, g):
  x, kernel = residuals
  return input_gradient(g, kernel), kernel_gradient(x, g, kernel.shape[0]).astype(kernel.dtype)


def input_gradient(g: Array, kernel: Array) -> Array:
  """d(sum(conv_same(x, w) * g)) / dx: the 'SAME' convolution of g with w flipped, in and
  out swapped, that kernel written out in HWIO (the barrier keeps XLA from folding the
  transpose into the convolution's dimension numbers, a form XLA:CPU's fast convolution
  path does not take)."""
  if kernel.shape[0] % 2 == 0:  # 'SAME' pads asymmetrically: XLA's own transpose rule.
    x = jnp.zeros(g.shape[:-1] + kernel.shape[2:3], g.dtype)
    return jax.vjp(lambda x_: _conv_same(x_, kernel), x)[1](g)[0]
  flipped = jax.lax.optimization_barrier(jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))
  return _conv_same(g, flipped)


# Bytes of padded input one chunk of the kernel gradient's loop reads: the taps of
# a chunk then stay in cache (benchmarks/README.md has the measurement).
CHUNK_BYTES = 1 << 20


def kernel_gradient(x: Array, g: Array, k: int) -> Array:
  """d(sum(conv_same(x, w) * g)) / dw, (k, k, I, O): one matmul per tap, over batch chunks."""
  n, h, w, c = x.shape
  lo = (k - 1) // 2  # 'SAME' pads (k-1)//2 before, the rest after.
  per_image = (h + k - 1) * (w + k - 1) * c * x.dtype.itemsize

  def taps(x_, g_):
    xp = jnp.pad(x_, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
    return jnp.stack([
        jnp.stack([jnp.einsum('nhwi,nhwo->io', xp[:, a:a + h, b:b + w], g_) for b in range(k)])
        for a in range(k)])

  chunk = max([d for d in range(1, n + 1) if n % d == 0 and d * per_image <= CHUNK_BYTES],
              default=1)
  if chunk == n or n * per_image <= 2 * CHUNK_BYTES:
    return taps(x, g)
  xs = x.reshape(n // chunk, chunk, h, w, c)
  gs = g.reshape(n // chunk, chunk, h, w, g.shape[-1])
  zero = jnp.zeros((k, k, c, g.shape[-1]), jnp.promote_types(x.dtype, jnp.float32))
  return jax.lax.fori_loop(0, n // chunk, lambda i, acc: acc + taps(xs[i], gs[i]), zero)


_conv_same_gradfix.defvjp(_conv_same_fwd, _conv_same_bwd)
