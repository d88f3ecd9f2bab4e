"""A workaround for XLA:CPU's convolution kernel gradient, kept apart behind one switch.

Inside the train step XLA:CPU lowers the kernel gradient of a stride-1 'SAME'
convolution as a convolution with an HxW window over a batch-minor layout,
several times slower than it needs to be on a CPU (benchmarks/README.md has
the measurement). `conv_same` computes the same values and gradients as
lax.conv_general_dilated, the kernel gradient as one matmul per kernel tap.
It is on for the CPU backend only: GPUs and TPUs have fast native convolution
gradients (cuDNN, the MXU). As stylegan2-ada-pytorch keeps its conv2d_gradfix.
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
  k = kernel.shape[0]
  _, vjp_x = jax.vjp(lambda x_: _conv_same(x_, kernel), x)
  lo = (k - 1) // 2  # 'SAME' pads (k-1)//2 before, the rest after.
  xp = jnp.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
  h, w = x.shape[1:3]
  d_kernel = jnp.stack([
      jnp.stack([jnp.einsum('nhwi,nhwo->io', xp[:, a:a + h, b:b + w], g)
                 for b in range(k)]) for a in range(k)])
  return vjp_x(g)[0], d_kernel.astype(kernel.dtype)


_conv_same_gradfix.defvjp(_conv_same_fwd, _conv_same_bwd)
