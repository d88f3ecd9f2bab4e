"""The XLA:CPU conv-gradient workaround: XLA's values and gradients, and its switch."""

import jax
import jax.numpy as jnp
import numpy as np

from biggan_jax.models import conv_gradfix


def test_conv_same_gradients_match_xla_conv(monkeypatch):
  """The CPU conv's hand-written gradients equal XLA's, also to second order (R1
  differentiates D's input gradient again), with the kernel gradient's batch
  chunks (forced here: 2 images a chunk) and without."""
  for k, chunk_bytes in ((1, 1 << 20), (2, 1 << 20), (3, 1 << 20), (3, 2 * 8 * 8 * 3 * 4)):
    monkeypatch.setattr(conv_gradfix, 'CHUNK_BYTES', chunk_bytes)
    x = jax.random.normal(jax.random.key(0), (6, 6, 6, 3))
    w = jax.random.normal(jax.random.key(1), (k, k, 3, 5))
    g = jax.random.normal(jax.random.key(2), (6, 6, 6, 5))
    loss = lambda conv: (lambda x, w: jnp.sum(conv(x, w) * g))
    for argnum in (0, 1):
      np.testing.assert_allclose(jax.grad(loss(conv_gradfix._conv_same_gradfix), argnum)(x, w),
                                 jax.grad(loss(conv_gradfix._conv_same), argnum)(x, w),
                                 rtol=1e-5, atol=1e-5)
    r1 = lambda conv: (lambda w: jnp.sum(jax.grad(lambda x: jnp.sum(conv(x, w) ** 2))(x) ** 2))
    np.testing.assert_allclose(jax.grad(r1(conv_gradfix._conv_same_gradfix))(w),
                               jax.grad(r1(conv_gradfix._conv_same))(w), rtol=1e-4, atol=1e-4)


def test_switch(monkeypatch):
  """None: on for the CPU backend only; True / False force it."""
  monkeypatch.setattr(conv_gradfix, 'ENABLED', None)
  assert conv_gradfix.enabled() == (jax.default_backend() == 'cpu')
  monkeypatch.setattr(conv_gradfix, 'ENABLED', False)
  assert not conv_gradfix.enabled()
  x = jax.random.normal(jax.random.key(0), (1, 4, 4, 2))
  w = jax.random.normal(jax.random.key(1), (3, 3, 2, 2))
  np.testing.assert_array_equal(conv_gradfix.conv_same(x, w), conv_gradfix._conv_same(x, w))
