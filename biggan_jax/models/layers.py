"""BigGAN's building blocks, numerically as in BigGAN-PyTorch (layers.py).

Conventions (BigGAN-PyTorch's layers.py and utils.py):
- Spectral norm: W viewed as (out, -1); u (1, out) is state advanced by one
  power step per train-mode call; normalisation is x / max(|x|, eps).
- BatchNorm: normalise with the biased batch variance, keep running stats with
  PyTorch momentum 0.1 and the *unbiased* variance. Under `jax.jit` with the
  batch sharded over a mesh, the batch mean/var are global: this is
  cross-replica BN with no extra code.
- Everything is NHWC; kernels are HWIO.

Variable collections: 'params', 'batch_stats' (BN running stats) and
'spectral' (power-iteration vector `u` and the last `sigma`).
"""

import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from biggan_jax.models import conv_gradfix

Array = jax.Array
Dtype = Any


def at_least_f32(dtype) -> Any:
  """float32 for float32 and narrower (bfloat16) dtypes, float64 for float64: where
  BigGAN's numerics need float32 (SN, BN statistics, softmax, the logits), a float64
  model (jax x64, the iteration-parity test) stays float64 rather than being rounded."""
  return jnp.promote_types(dtype, jnp.float32)


def affine(x: Array, gain: Array | None = None, bias: Array | None = None) -> Array:
  """x * gain + bias computed in at least float32, returned in x's dtype.

  gain and bias are broadcast over positions (and the batch), so their
  gradients are sums over all of them. Taken from a bfloat16 x those sums
  would accumulate in bfloat16 (XLA:CPU does), which stalls once a sum is
  about 256 times its addends; in float32 they accumulate as every backend's
  convolutions do. A no-op change for float32 and float64 models.
  """
  dtype = at_least_f32(x.dtype)
  y = x.astype(dtype)
  if gain is not None:
    y = y * gain.astype(dtype)
  if bias is not None:
    y = y + bias.astype(dtype)
  return y.astype(x.dtype)


# ------------------------------------------------------------------ init
def kernel_init(name: str) -> Callable:
  """Weight init by BigGAN-PyTorch name ('ortho', 'N02', 'xavier')."""
  if name == 'ortho':
    return nn.initializers.orthogonal()
  if name == 'N02':
    return nn.initializers.normal(0.02)
  if name == 'xavier':
    return nn.initializers.xavier_uniform()
  raise ValueError(f"init={name!r}: use 'ortho', 'N02' or 'xavier'")


def torch_bias_init(fan_in: int) -> Callable:
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default bias init, which
  BigGAN's init_weights leaves untouched."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


# ---------------------------------------------------------- spectral norm
def _normalize(x: Array, eps: float) -> Array:
  # F.normalize: x / max(|x|_2, eps).
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def power_iteration(w_mat: Array, u: Array, n_iters: int, eps: float):
  """`n_iters` power steps on W (out, in) from u (1, out) -> (sigma, u, v).

  sigma = v Wᵀ uᵀ is differentiable in W (u, v are constants), as upstream.
  """
  w_sg = jax.lax.stop_gradient(w_mat)
  v = None
  for _ in range(n_iters):
    v = _normalize(u @ w_sg, eps)
    u = _normalize(v @ w_sg.T, eps)
  sigma = jnp.squeeze((v @ w_mat.T) @ u.T)
  return sigma, u, v


class SpectralNormed(nn.Module):
  """Holds the SN state of one weight and returns W / sigma(W).

  Written here rather than with flax.linen.SpectralNorm because BigGAN
  checkpoints need upstream's conventions: max(|x|, eps) normalisation and u
  living on the (out, -1) view, also for embeddings whose `out` is the class
  axis (flax uses rsqrt(|x|²+eps) and the last axis).
  """
  eps: float = 1e-6
  n_iters: int = 1

  @nn.compact
  def __call__(self, w: Array, w_mat: Array, train: bool) -> Array:
    out = w_mat.shape[0]
    u_var = self.variable(
        'spectral', 'u',
        lambda: jax.random.normal(self.make_rng('params'), (1, out), jnp.float32))
    sigma_var = self.variable('spectral', 'sigma', lambda: jnp.ones((), jnp.float32))
    sigma, u, _ = power_iteration(w_mat.astype(at_least_f32(w_mat.dtype)), u_var.value,
                                  self.n_iters, self.eps)
    if train and not self.is_initializing():
      u_var.value = jax.lax.stop_gradient(u)
      sigma_var.value = jax.lax.stop_gradient(sigma)
    return w / sigma.astype(w.dtype)


class SNDense(nn.Module):
  """SNLinear: kernel (in, out) (= torch weight transposed)."""
  features: int
  use_bias: bool = True
  weight_init: str = 'ortho'
  sn_eps: float = 1e-6
  sn_iters: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    fan_in = x.shape[-1]
    kernel = self.param('kernel', kernel_init(self.weight_init), (fan_in, self.features))
    kernel = SpectralNormed(self.sn_eps, self.sn_iters, name='sn')(
        kernel, kernel.T, train)
    y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param('bias', torch_bias_init(fan_in), (self.features,))
      y = affine(y, bias=bias)
    return y


class SNConv(nn.Module):
  """SNConv2d with 'same' padding (3x3 pad 1, 1x1 pad 0); kernel HWIO."""
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  weight_init: str = 'ortho'
  sn_eps: float = 1e-6
  sn_iters: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', kernel_init(self.weight_init), (k, k, cin, self.features))
    kernel = SpectralNormed(self.sn_eps, self.sn_iters, name='sn')(
        kernel, kernel.reshape(-1, self.features).T, train)
    y = conv_gradfix.conv_same(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param('bias', torch_bias_init(cin * k * k), (self.features,))
      y = affine(y, bias=bias)
    return y


class SNEmbed(nn.Module):
  """SNEmbedding: table (num_classes, features); SN's `out` is the class axis."""
  num_embeddings: int
  features: int
  weight_init: str = 'ortho'
  sn_eps: float = 1e-6
  sn_iters: int = 1

  @nn.compact
  def __call__(self, y: Array, train: bool) -> Array:
    table = self.param('embedding', kernel_init(self.weight_init),
                       (self.num_embeddings, self.features))
    table = SpectralNormed(self.sn_eps, self.sn_iters, name='sn')(table, table, train)
    return jnp.take(table, y, axis=0)


class SharedEmbedding(nn.Module):
  """G's shared class embedding (Sec. 3), the one G weight without SN.

  Returns `y_embed` when given (e.g. interpolated embeddings), else the rows
  of `y`; the table exists either way, so init never depends on the path.
  """
  num_classes: int
  features: int
  weight_init: str = 'ortho'

  @nn.compact
  def __call__(self, y: Array | None, y_embed: Array | None = None) -> Array:
    table = self.param('embedding', kernel_init(self.weight_init),
                       (self.num_classes, self.features))
    return jnp.take(table, y, axis=0) if y_embed is None else y_embed


# -------------------------------------------------------------- batchnorm
class BatchStats(nn.Module):
  """Normalises x over (N, H, W) and keeps BigGAN's running statistics.

  Own code rather than flax.linen.BatchNorm because upstream's running
  variance is the unbiased one (torch.F.batch_norm); flax keeps the biased.
  Stats are computed in float32 whatever the compute dtype (float64 for float64),
  and the normalised x is returned in that precision for the gain and bias.
  """
  eps: float = 1e-5
  momentum: float = 0.1

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    c = x.shape[-1]
    mean_var = self.variable('batch_stats', 'mean', jnp.zeros, (c,), jnp.float32)
    var_var = self.variable('batch_stats', 'var', jnp.ones, (c,), jnp.float32)
    xf = x.astype(at_least_f32(x.dtype))
    if train:
      axes = tuple(range(x.ndim - 1))
      mean = jnp.mean(xf, axes)
      var = jnp.mean(jnp.square(xf - mean), axes)
      if not self.is_initializing():
        n = math.prod(x.shape[:-1])
        unbiased = var * (n / max(n - 1, 1))
        mean_var.value = (1 - self.momentum) * mean_var.value + self.momentum * mean
        var_var.value = (1 - self.momentum) * var_var.value + self.momentum * unbiased
    else:
      mean, var = mean_var.value, var_var.value
    return (xf - mean) * jax.lax.rsqrt(var + self.eps)


class BatchNorm(nn.Module):
  """Unconditional BN with learned gain and bias (G's output layer)."""
  eps: float = 1e-5
  momentum: float = 0.1

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    c = x.shape[-1]
    gain = self.param('gain', nn.initializers.ones, (c,))
    bias = self.param('bias', nn.initializers.zeros, (c,))
    h = BatchStats(self.eps, self.momentum, name='stats')(x, train)
    return affine(h, gain, bias).astype(x.dtype)


class ConditionalBatchNorm(nn.Module):
  """ccbn: gain = 1 + W_g c, bias = W_b c, with W_g, W_b SN linears (no bias).

  `c` is the conditioning vector: the shared class embedding, concatenated
  with this block's z chunk under hierarchical latents (Sec. 3). With
  `num_classes` > 0 (BigGAN-PyTorch's G_shared=False) `c` are class ids and
  W_g, W_b are this BN's own (num_classes, C) tables, plain nn.Embedding
  upstream: no SN.
  """
  eps: float = 1e-5
  momentum: float = 0.1
  weight_init: str = 'ortho'
  sn_eps: float = 1e-6
  sn_iters: int = 1
  dtype: Dtype = jnp.float32
  num_classes: int = 0

  @nn.compact
  def __call__(self, x: Array, c: Array, train: bool) -> Array:
    ch = x.shape[-1]
    if self.num_classes:
      table = functools.partial(nn.Embed, self.num_classes, ch,
                                embedding_init=kernel_init(self.weight_init))
      gain = 1.0 + table(name='gain')(c)
      bias = table(name='bias')(c)
    else:
      linear = functools.partial(SNDense, ch, use_bias=False, weight_init=self.weight_init,
                                 sn_eps=self.sn_eps, sn_iters=self.sn_iters,
                                 dtype=at_least_f32(c.dtype))
      gain = 1.0 + linear(name='gain')(c, train)
      bias = linear(name='bias')(c, train)
    h = BatchStats(self.eps, self.momentum, name='stats')(x, train)
    return affine(h, gain[:, None, None, :], bias[:, None, None, :]).astype(x.dtype)


# -------------------------------------------------------------- attention
class Attention(nn.Module):
  """SAGAN self-attention as in BigGAN (theta/phi C/8, g C/2, pooled keys).

  out = x + gamma * o(g · softmax(thetaᵀ phi)); gamma starts at 0.
  """
  weight_init: str = 'ortho'
  sn_eps: float = 1e-6
  sn_iters: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    n, h, w, c = x.shape
    conv = functools.partial(SNConv, kernel_size=1, use_bias=False, weight_init=self.weight_init,
                             sn_eps=self.sn_eps, sn_iters=self.sn_iters,
                             dtype=self.dtype)
    pool = lambda t: nn.max_pool(t, (2, 2), (2, 2))
    theta = conv(c // 8, name='theta')(x, train).reshape(n, h * w, c // 8)
    phi = pool(conv(c // 8, name='phi')(x, train)).reshape(n, h * w // 4, c // 8)
    g = pool(conv(c // 2, name='g')(x, train)).reshape(n, h * w // 4, c // 2)
    logits = jnp.einsum('nqc,nkc->nqk', theta, phi)
    logits = logits.astype(at_least_f32(logits.dtype))
    beta = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    attended = jnp.einsum('nqk,nkc->nqc', beta, g).reshape(n, h, w, c // 2)
    o = conv(c, name='o')(attended, train)
    gamma = self.param('gamma', nn.initializers.zeros, ())
    f = at_least_f32(o.dtype)  # gamma's gradient sums every position: see affine().
    return x + (gamma.astype(f) * o.astype(f)).astype(o.dtype)


def remat(block: type, policy: str, train_argnum: int) -> type:
  """`block`, or `block` under jax.checkpoint (nn.remat) with the named
  jax.checkpoint_policies `policy`: its activations are recomputed in the
  backward pass instead of kept, trading FLOPs for memory. 'none' leaves it.
  Parameter and state names do not change, so checkpoints load either way.
  `train_argnum`: the bool `train` argument of __call__ (self is 0), static.
  """
  if policy == 'none':
    return block
  return nn.remat(block, policy=getattr(jax.checkpoint_policies, policy),
                  static_argnums=(train_argnum,))


def upsample_nearest(x: Array) -> Array:
  """F.interpolate(scale_factor=2), nearest."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool(x: Array) -> Array:
  """nn.AvgPool2d(2)."""
  return nn.avg_pool(x, (2, 2), (2, 2))
