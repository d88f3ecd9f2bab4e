"""The architecture tables config validation reads are those the models build."""

from biggan_jax.models import architectures, biggan, biggan_deep


def test_attention_tables_match_the_models():
  """validate's attention resolutions and widths are those the models build."""
  for resolution, widths in architectures.G_ATTENTION_WIDTHS.items():
    _, out = biggan.G_CHANNELS[resolution]
    assert widths == dict(zip(biggan.g_block_resolutions(resolution), out))
  d_blocks = {'biggan': biggan.d_block_resolutions,
              'biggan_deep': biggan_deep.d_stage_resolutions}
  d_tables = {'biggan': biggan.D_CHANNELS, 'biggan_deep': biggan_deep.D_CHANNELS}
  for family, tables in architectures.D_ATTENTION_WIDTHS.items():
    assert set(tables) == set(architectures.RESOLUTIONS[family])
    for resolution, widths in tables.items():
      narrowest = {}
      for r, mult in zip(d_blocks[family](resolution), d_tables[family][resolution][1]):
        narrowest[r] = min(mult, narrowest.get(r, mult))
      assert widths == narrowest, (family, resolution)
