"""What each BigGAN family is built of, as plain tables: read by config validation
before any model (or JAX) is imported, and checked against the models by
tests/models/test_architectures.py.
"""

FAMILIES = ('biggan', 'biggan_deep')
INITS = ('ortho', 'N02', 'xavier')  # BigGAN-PyTorch's G_init / D_init names.

RESOLUTIONS = {
    # Output resolutions each family is built for. BigGAN-PyTorch has no 16x16
    # architecture; BigGAN's 16 is for CPU demos, BigGAN-deep starts at 32.
    'biggan': (16, 32, 64, 128, 256, 512),
    'biggan_deep': (32, 64, 128, 256, 512),
}

# Where self-attention can go, and how wide it is there: resolution -> channel
# multiplier (x ch) of the G block ending at that resolution (BigGAN.py /
# BigGANdeep.py G_arch out_channels; the same for both families; biggan_jax's
# 16 mirrors 32). tests/models/test_architectures.py checks them against the models.
G_ATTENTION_WIDTHS = {
    16: {8: 4, 16: 4},
    32: {8: 4, 16: 4, 32: 4},
    64: {8: 16, 16: 8, 32: 4, 64: 2},
    128: {8: 16, 16: 8, 32: 4, 64: 2, 128: 1},
    256: {8: 16, 16: 8, 32: 8, 64: 4, 128: 2, 256: 1},
    512: {8: 16, 16: 8, 32: 8, 64: 4, 128: 2, 256: 1, 512: 1},
}

# The same for D (x d_ch): the narrowest D block (BigGAN) or stage
# (BigGAN-deep) at each resolution; attention follows every one of them. The
# 16 and 32 Ds stop downsampling at 8x8 (upstream's 32 D does the same), so
# they have no 4x4 block to attend at.
D_ATTENTION_WIDTHS = {
    'biggan': {
        16: {8: 4},
        32: {16: 4, 8: 4},
        64: {32: 1, 16: 2, 8: 4, 4: 8},
        128: {64: 1, 32: 2, 16: 4, 8: 8, 4: 16},
        256: {128: 1, 64: 2, 32: 4, 16: 8, 8: 8, 4: 16},
        512: {256: 1, 128: 1, 64: 2, 32: 4, 16: 8, 8: 8, 4: 16},
    },
    'biggan_deep': {
        32: {16: 4, 8: 4},
        64: {32: 2, 16: 4, 8: 8, 4: 16},
        128: {64: 2, 32: 4, 16: 8, 8: 16, 4: 16},
        256: {128: 2, 64: 4, 32: 8, 16: 8, 8: 16, 4: 16},
        512: {256: 1, 128: 2, 64: 4, 32: 8, 16: 8, 8: 16, 4: 16},
    },
}


def num_g_blocks(resolution: int) -> int:
  """G stages from the 4x4 bottom to `resolution`: log2(resolution / 4)."""
  return resolution.bit_length() - 3


def num_z_slots(resolution: int) -> int:
  """Hierarchical-z chunks: one for the first linear plus one per G block."""
  return num_g_blocks(resolution) + 1


def parse_attention(key: str, value: str) -> tuple[int, ...]:
  """'32_64' -> (32, 64); '', '0' and 'none' -> (). ValueError naming `key` otherwise."""
  if str(value) in ('', '0', 'none'):
    return ()
  try:
    return tuple(int(v) for v in str(value).split('_'))
  except ValueError:
    raise ValueError(
        f"{key}={value!r}: give attention resolutions as '64' or '32_64' ('' for none)"
    ) from None


def d_width(model_config) -> int:
  """D's channel multiplier: model.d_ch, or model.ch when d_ch is 0."""
  return model_config.d_ch or model_config.ch


def attention_resolutions(model_config) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """(G, D) self-attention resolutions parsed from '32_64'-style strings."""
  return (parse_attention('model.g_attn', model_config.g_attn),
          parse_attention('model.d_attn', model_config.d_attn))
