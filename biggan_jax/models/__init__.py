"""BigGAN and BigGAN-deep generators and discriminators, built from a config.

Imports nothing heavy itself, so that config validation can read
models/architectures.py before JAX is loaded.
"""

from biggan_jax.models import architectures


def _common(m):
  import jax.numpy as jnp
  # .get: model configs saved before remat existed.
  return dict(sn_eps=m.sn_eps, sn_iters=m.sn_iters, weight_init=m.init,
              dtype=jnp.dtype(m.dtype), remat=m.get('remat', 'none'))


def create_generator(m):
  """The generator described by `config.model`."""
  g_attn, _ = architectures.attention_resolutions(m)
  if m.family == 'biggan_deep':
    from biggan_jax.models import biggan_deep
    return biggan_deep.Generator(
        resolution=m.resolution, ch=m.ch, dim_z=m.dim_z, shared_dim=m.shared_dim,
        num_classes=m.num_classes, depth=m.g_depth, attn=g_attn,
        bn_eps=m.bn_eps, bn_momentum=m.bn_momentum, **_generator_output(m), **_common(m))
  from biggan_jax.models import biggan
  return biggan.Generator(
      resolution=m.resolution, ch=m.ch, dim_z=m.dim_z, shared_dim=m.shared_dim,
      num_classes=m.num_classes, hierarchical_z=m.hierarchical_z,
      shared_embedding=m.get('shared_embedding', True), attn=g_attn,
      bn_eps=m.bn_eps, bn_momentum=m.bn_momentum, **_generator_output(m), **_common(m))


def _generator_output(m):
  # .get: model configs saved before these keys existed.
  return dict(output_bn_eps=m.get('output_bn_eps', 1e-5),
              output_conv_channels=m.get('output_conv_channels', 3))


def create_discriminator(m):
  """The discriminator described by `config.model`."""
  _, d_attn = architectures.attention_resolutions(m)
  if m.family == 'biggan_deep':
    from biggan_jax.models import biggan_deep
    return biggan_deep.Discriminator(
        resolution=m.resolution, ch=architectures.d_width(m), num_classes=m.num_classes,
        depth=m.d_depth, attn=d_attn, **_common(m))
  from biggan_jax.models import biggan
  return biggan.Discriminator(
      resolution=m.resolution, ch=architectures.d_width(m), num_classes=m.num_classes,
      attn=d_attn, **_common(m))
