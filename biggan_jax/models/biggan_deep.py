"""BigGAN-deep generator and projection discriminator (Brock et al. 2019, App. B).

BigGAN-deep replaces BigGAN's blocks with `depth` bottleneck residual blocks
per resolution stage, conditions every BN on the full [z, shared(y)] vector
(no z chunks) and widens D's shortcuts by concatenation instead of a 1x1
projection. Block order and tables follow BigGAN-PyTorch's BigGANdeep.py
(numerically; parameter counts match upstream exactly); the differences are
listed in the classes' docstrings.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from biggan_jax.models import biggan
from biggan_jax.models import layers

Array = jax.Array

# (in, out) channel multipliers per G stage; each stage ends with a x2 upsample
# from 4x4. BigGAN-deep's stages use BigGAN's G table (16 is our CPU-demo size).
G_CHANNELS = biggan.G_CHANNELS

# (in, out, downsample) channel multipliers per D stage, after the 3 -> in[0]
# input conv. 512 extends upstream's 256 table (upstream has no 512 D).
D_CHANNELS = {
    16: ((4, 4), (4, 4), (True, False)),
    32: ((4, 4, 4), (4, 4, 4), (True, True, False)),
    64: ((1, 2, 4, 8), (2, 4, 8, 16), (True,) * 4),
    128: ((1, 2, 4, 8, 16), (2, 4, 8, 16, 16), (True,) * 5),
    256: ((1, 2, 4, 8, 8, 16), (2, 4, 8, 8, 16, 16), (True,) * 6),
    512: ((1, 1, 2, 4, 8, 8, 16), (1, 2, 4, 8, 8, 16, 16), (True,) * 7),
}

# Bottleneck width: hidden channels = in (G) or out (D) // CHANNEL_RATIO.
CHANNEL_RATIO = 4


def g_stage_resolutions(resolution: int) -> list[int]:
  """Output resolution of each G stage."""
  return biggan.g_block_resolutions(resolution)


def d_stage_resolutions(resolution: int) -> list[int]:
  """Output resolution of each D stage."""
  res, out = resolution, []
  for down in D_CHANNELS[resolution][2]:
    res = res // 2 if down else res
    out.append(res)
  return out


class GBlock(nn.Module):
  """Bottleneck G block: 1x1 down, [up], two 3x3, 1x1 up; every conv after BN-ReLU.

  h = conv1(relu(bn1(x))); h = relu(bn2(h)); [upsample h]; h = conv2(h);
  h = conv3(relu(bn3(h))); h = conv4(relu(bn4(h))). The shortcut has no
  weights: x keeps its first `out_ch` channels, then is upsampled.
  """
  out_ch: int
  upsample: bool
  bn: Any
  conv: Any

  @nn.compact
  def __call__(self, x, c, train):
    hidden = x.shape[-1] // CHANNEL_RATIO
    h = self.conv(hidden, kernel_size=1, name='conv1')(
        nn.relu(self.bn(name='bn1')(x, c, train)), train)
    h = nn.relu(self.bn(name='bn2')(h, c, train))
    if self.upsample:
      h = layers.upsample_nearest(h)
    h = self.conv(hidden, name='conv2')(h, train)
    h = self.conv(hidden, name='conv3')(nn.relu(self.bn(name='bn3')(h, c, train)), train)
    h = self.conv(self.out_ch, kernel_size=1, name='conv4')(
        nn.relu(self.bn(name='bn4')(h, c, train)), train)
    x = x[..., :self.out_ch]
    if self.upsample:
      x = layers.upsample_nearest(x)
    return h + x


class Generator(nn.Module):
  """BigGAN-deep G: z, y -> images in [-1, 1], (N, R, R, 3).

  c = [z, shared(y)] (z first, as upstream's torch.cat([z, y]) and TF-Hub)
  feeds the first linear layer and conditions every BN. Each stage has
  `depth` blocks: all but the last keep the stage's input width, the last one
  maps in -> out and upsamples. Upstream makes only the first block in -> in
  and breaks for depth != 2 when in != out; the two agree at depth 2.

  The output conv has `output_conv_channels` (3, as BigGAN-PyTorch); TF-Hub
  and pytorch-pretrained-BigGAN compute `ch` and keep the first 3, which the
  converted models reproduce (slicing the weights would change their SN sigma).
  """
  resolution: int = 128
  ch: int = 128
  dim_z: int = 128
  shared_dim: int = 128
  num_classes: int = 1000
  depth: int = 2
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

  def embed_classes(self, y: Array) -> Array:
    """The shared class embedding of `y` (for class interpolation)."""
    return jnp.take(self.variables['params']['shared']['embedding'], y, axis=0)

  @nn.compact
  def __call__(self, z: Array, y: Array | None = None, *, train: bool,
               y_embed: Array | None = None) -> Array:
    """`y` are class ids; or pass `y_embed` (e.g. interpolated embeddings)."""
    y_embed = layers.SharedEmbedding(self.num_classes, self.shared_dim, self.weight_init,
                                     name='shared')(y, y_embed)
    sn = dict(weight_init=self.weight_init, sn_eps=self.sn_eps, sn_iters=self.sn_iters)
    conv = functools.partial(layers.SNConv, dtype=self.dtype, **sn)
    bn = functools.partial(layers.ConditionalBatchNorm, self.bn_eps,
                           self.bn_momentum, **sn)
    in_mult, out_mult = G_CHANNELS[self.resolution]
    c = jnp.concatenate([z.astype(jnp.float32), y_embed.astype(jnp.float32)], -1)
    c0 = in_mult[0] * self.ch
    h = layers.SNDense(16 * c0, dtype=self.dtype, name='linear', **sn)(c, train)
    h = h.reshape(h.shape[0], 4, 4, c0)
    block = layers.remat(GBlock, self.remat, 3)
    attention = layers.remat(layers.Attention, self.remat, 2)
    for i, res in enumerate(g_stage_resolutions(self.resolution)):
      for j in range(self.depth):
        last = j == self.depth - 1
        out_ch = (out_mult[i] if last else in_mult[i]) * self.ch
        h = block(out_ch, last, bn, conv, name=f'block{i}_{j}')(h, c, train)
      if res in self.attn:
        h = attention(dtype=self.dtype, name=f'attn{i}', **sn)(h, train)
    h = nn.relu(layers.BatchNorm(self.output_bn_eps, self.bn_momentum, name='output_bn')(
        h, train))
    h = conv(self.output_conv_channels, name='output_conv')(h, train)[..., :3]
    return jnp.tanh(h.astype(jnp.float32))


class DBlock(nn.Module):
  """Pre-activated bottleneck D block with a concatenating shortcut.

  h = conv1(relu(x)) (1x1 down to out // 4); conv2, conv3 (3x3) after ReLU;
  ReLU, [avg-pool], conv4 (1x1 up to out). Shortcut: [avg-pool] x, then, when
  in != out, append conv_sc(x) (1x1, in -> out - in) to x's channels.
  """
  out_ch: int
  downsample: bool
  conv: Any

  @nn.compact
  def __call__(self, x, train):
    hidden = self.out_ch // CHANNEL_RATIO
    h = self.conv(hidden, kernel_size=1, name='conv1')(nn.relu(x), train)
    h = self.conv(hidden, name='conv2')(nn.relu(h), train)
    h = nn.relu(self.conv(hidden, name='conv3')(nn.relu(h), train))
    if self.downsample:
      h = layers.avg_pool(h)
      x = layers.avg_pool(x)
    h = self.conv(self.out_ch, kernel_size=1, name='conv4')(h, train)
    in_ch = x.shape[-1]
    if in_ch != self.out_ch:
      sc = self.conv(self.out_ch - in_ch, kernel_size=1, name='conv_sc')(x, train)
      x = jnp.concatenate([x, sc], -1)
    return h + x


class Discriminator(nn.Module):
  """BigGAN-deep projection D: logits (N,) = linear(s) + <embed(y), s>, s = sum relu h.

  An input conv (3 -> in[0]), then `depth` blocks per stage: the first maps
  in -> out and downsamples (if the stage does), the rest are out -> out.
  Attention follows the stage whose output resolution is listed in `attn`;
  at resolution 32 that is the true output resolution (16, 8, 8), where
  upstream's table labels every stage 16.
  """
  resolution: int = 128
  ch: int = 128
  num_classes: int = 1000
  depth: int = 2
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
    in_mult, out_mult, down = D_CHANNELS[self.resolution]
    h = conv(in_mult[0] * self.ch, name='input_conv')(x.astype(self.dtype), train)
    block = layers.remat(DBlock, self.remat, 2)
    attention = layers.remat(layers.Attention, self.remat, 2)
    for i, res in enumerate(d_stage_resolutions(self.resolution)):
      for j in range(self.depth):
        h = block(out_mult[i] * self.ch, down[i] and j == 0, conv,
                  name=f'block{i}_{j}')(h, train)
      if res in self.attn:
        h = attention(dtype=self.dtype, name=f'attn{i}', **sn)(h, train)
    h = jnp.sum(nn.relu(h).astype(jnp.float32), axis=(1, 2))
    out = layers.SNDense(1, name='linear', **sn)(h, train)[:, 0]
    embed = layers.SNEmbed(self.num_classes, h.shape[-1], name='embed', **sn)(y, train)
    return out + jnp.sum(embed * h, axis=-1)
