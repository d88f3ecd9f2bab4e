"""BigGAN generator and projection discriminator (Brock et al. 2019, Sec. 3).

Architecture tables and block order follow BigGAN-PyTorch's BigGAN.py so that
its checkpoints load one-to-one (see biggan_jax/convert/biggan_pytorch.py).
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from biggan_jax.models import layers

Array = jax.Array
NO_SHARED_EMBEDDING = ('model.shared_embedding=False: G has no shared class embedding '
                       '(each BN holds its own class tables), so it cannot interpolate '
                       'between class embeddings nor take hierarchical z')

# (in, out) channel multipliers per G block; each block upsamples x2 from 4x4.
G_CHANNELS = {
    16: ((4, 4), (4, 4)),
    32: ((4, 4, 4), (4, 4, 4)),
    64: ((16, 16, 8, 4), (16, 8, 4, 2)),
    128: ((16, 16, 8, 4, 2), (16, 8, 4, 2, 1)),
    256: ((16, 16, 8, 8, 4, 2), (16, 8, 8, 4, 2, 1)),
    512: ((16, 16, 8, 8, 4, 2, 1), (16, 8, 8, 4, 2, 1, 1)),
}

# (in, out, downsample) per D block; in 0 means the 3 image channels.
D_CHANNELS = {
    16: ((0, 4, 4), (4, 4, 4), (True, False, False)),
    32: ((0, 4, 4, 4), (4, 4, 4, 4), (True, True, False, False)),
    64: ((0, 1, 2, 4, 8), (1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((0, 1, 2, 4, 8, 16), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
    256: ((0, 1, 2, 4, 8, 8, 16), (1, 2, 4, 8, 8, 16, 16), (True,) * 6 + (False,)),
    512: ((0, 1, 1, 2, 4, 8, 8, 16), (1, 1, 2, 4, 8, 8, 16, 16),
          (True,) * 7 + (False,)),
}


def g_block_resolutions(resolution: int) -> list[int]:
  """Output resolution of each G block."""
  return [8 * 2**i for i in range(len(G_CHANNELS[resolution][0]))]


def d_block_resolutions(resolution: int) -> list[int]:
  """Output resolution of each D block."""
  res, out = resolution, []
  for down in D_CHANNELS[resolution][2]:
    res = res // 2 if down else res
    out.append(res)
  return out


class GBlock(nn.Module):
  """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, plus an upsampled 1x1 shortcut."""
  out_ch: int
  bn: Any
  conv: Any

  @nn.compact
  def __call__(self, x, c, train):
    h = nn.relu(self.bn(name='bn1')(x, c, train))
    h, x = layers.upsample_nearest(h), layers.upsample_nearest(x)
    h = self.conv(self.out_ch, name='conv1')(h, train)
    h = nn.relu(self.bn(name='bn2')(h, c, train))
    h = self.conv(self.out_ch, name='conv2')(h, train)
    x = self.conv(self.out_ch, kernel_size=1, name='conv_sc')(x, train)
    return h + x


class Generator(nn.Module):
  """BigGAN G: z, y -> images in [-1, 1], (N, R, R, 3).

  Hierarchical latents: z splits into num_blocks + 1 chunks; chunk 0 feeds the
  first linear layer, chunk i+1 joins the shared class embedding (class first,
  as upstream) to condition every BN of block i.

  shared_embedding=False is BigGAN-PyTorch's G_shared=False (its default, and
  what scripts/launch_cifar_ema.sh trains): no shared table; every
  conditional BN looks the class up in its own gain and bias tables
  (layers.ConditionalBatchNorm), and z (not hierarchical) feeds only the
  first linear layer.
  """
  resolution: int = 128
  ch: int = 96
  dim_z: int = 120
  shared_dim: int = 128
  num_classes: int = 1000
  hierarchical_z: bool = True
  shared_embedding: bool = True
  attn: Sequence[int] = (64,)
  bn_eps: float = 1e-5
  output_bn_eps: float = 1e-5
  output_conv_channels: int = 3
  bn_momentum: float = 0.1
  sn_eps: float = 1e-6
  sn_iters: int = 1
  weight_init: str = 'ortho'
  dtype: Any = jnp.float32
  remat: str = 'none'   # layers.remat policy for every GBlock and Attention.

  @property
  def num_slots(self) -> int:
    return len(G_CHANNELS[self.resolution][0]) + 1

  @property
  def z_chunk_size(self) -> int:
    return self.dim_z // self.num_slots if self.hierarchical_z else 0

  def embed_classes(self, y: Array) -> Array:
    """The shared class embedding of `y` (for class interpolation)."""
    if not self.shared_embedding:
      raise ValueError(NO_SHARED_EMBEDDING)
    return jnp.take(self.variables['params']['shared']['embedding'], y, axis=0)

  @nn.compact
  def __call__(self, z: Array, y: Array | None = None, *, train: bool,
               y_embed: Array | None = None) -> Array:
    """`y` are class ids; or pass `y_embed` (e.g. interpolated embeddings)."""
    sn = dict(weight_init=self.weight_init, sn_eps=self.sn_eps, sn_iters=self.sn_iters)
    conv = functools.partial(layers.SNConv, dtype=self.dtype, **sn)
    bn = functools.partial(layers.ConditionalBatchNorm, self.bn_eps, self.bn_momentum,
                           num_classes=0 if self.shared_embedding else self.num_classes, **sn)
    in_mult, out_mult = G_CHANNELS[self.resolution]
    num_blocks = len(in_mult)
    if not self.shared_embedding:
      if y_embed is not None or self.hierarchical_z:
        raise ValueError(NO_SHARED_EMBEDDING)
      y_embed = y  # class ids, looked up by every BN.
    else:
      y_embed = layers.SharedEmbedding(self.num_classes, self.shared_dim, self.weight_init,
                                       name='shared')(y, y_embed)
      y_embed = y_embed.astype(layers.at_least_f32(y_embed.dtype))
    if self.hierarchical_z:
      k = self.z_chunk_size
      zs = [z[:, i * k:(i + 1) * k] for i in range(num_blocks + 1)]
      z = zs[0]
      conds = [jnp.concatenate([y_embed, zc], -1) for zc in zs[1:]]
    else:
      conds = [y_embed] * num_blocks
    c0 = in_mult[0] * self.ch
    h = layers.SNDense(16 * c0, dtype=self.dtype, name='linear', **sn)(z, train)
    h = h.reshape(h.shape[0], 4, 4, c0)
    block = layers.remat(GBlock, self.remat, 3)
    attention = layers.remat(layers.Attention, self.remat, 2)
    for i, res in enumerate(g_block_resolutions(self.resolution)):
      h = block(out_mult[i] * self.ch, bn, conv, name=f'block{i}')(h, conds[i], train)
      if res in self.attn:
        h = attention(dtype=self.dtype, name=f'attn{i}', **sn)(h, train)
    h = nn.relu(layers.BatchNorm(self.output_bn_eps, self.bn_momentum, name='output_bn')(
        h, train))
    h = conv(self.output_conv_channels, name='output_conv')(h, train)[..., :3]
    return jnp.tanh(h.astype(layers.at_least_f32(h.dtype)))


class DBlock(nn.Module):
  """[ReLU]-conv3x3-ReLU-conv3x3-[pool] plus a 1x1 shortcut.

  Block 0 has no pre-activation and pools before its shortcut conv; later
  blocks conv, then pool (BigGAN-PyTorch DBlock).
  """
  out_ch: int
  downsample: bool
  preactivation: bool
  conv: Any

  @nn.compact
  def __call__(self, x, train):
    h = nn.relu(x) if self.preactivation else x
    h = self.conv(self.out_ch, name='conv1')(h, train)
    h = self.conv(self.out_ch, name='conv2')(nn.relu(h), train)
    if self.downsample:
      h = layers.avg_pool(h)
    if self.downsample or x.shape[-1] != self.out_ch:
      shortcut = self.conv(self.out_ch, kernel_size=1, name='conv_sc')
      if self.preactivation:
        x = shortcut(x, train)
        x = layers.avg_pool(x) if self.downsample else x
      else:
        x = layers.avg_pool(x) if self.downsample else x
        x = shortcut(x, train)
    return h + x


class Discriminator(nn.Module):
  """Projection D: logits (N,) = linear(sum relu h) + <embed(y), sum relu h>."""
  resolution: int = 128
  ch: int = 96
  num_classes: int = 1000
  attn: Sequence[int] = (64,)
  sn_eps: float = 1e-6
  sn_iters: int = 1
  weight_init: str = 'ortho'
  dtype: Any = jnp.float32
  remat: str = 'none'   # layers.remat policy for every DBlock and Attention.

  @nn.compact
  def __call__(self, x: Array, y: Array, *, train: bool) -> Array:
    sn = dict(weight_init=self.weight_init, sn_eps=self.sn_eps, sn_iters=self.sn_iters)
    conv = functools.partial(layers.SNConv, dtype=self.dtype, **sn)
    _, out_mult, down = D_CHANNELS[self.resolution]
    h = x.astype(self.dtype)
    block = layers.remat(DBlock, self.remat, 2)
    attention = layers.remat(layers.Attention, self.remat, 2)
    for i, res in enumerate(d_block_resolutions(self.resolution)):
      h = block(out_mult[i] * self.ch, down[i], i > 0, conv, name=f'block{i}')(h, train)
      if res in self.attn:
        h = attention(dtype=self.dtype, name=f'attn{i}', **sn)(h, train)
    h = jnp.sum(nn.relu(h).astype(layers.at_least_f32(h.dtype)), axis=(1, 2))
    out = layers.SNDense(1, name='linear', dtype=h.dtype, **sn)(h, train)[:, 0]
    embed = layers.SNEmbed(self.num_classes, h.shape[-1], name='embed', **sn)(y, train)
    return out + jnp.sum(embed * h, axis=-1)
