"""Converters from the public BigGAN checkpoint formats, one module per source.

`convert(source, input, output)` is `python -m biggan_jax.convert`: it writes a
converted checkpoint directory (checkpoints/converted.py).
"""

SOURCES = ('biggan-pytorch', 'huggingface', 'tfhub')


def convert(source: str, input_path: str, output: str, *, overwrite: bool = False) -> dict:
  """Converts `input_path` (a `source` model) into the directory `output`; returns its meta."""
  from biggan_jax.checkpoints import converted
  converted.check_writable(output, overwrite)  # before any slow work.
  if source not in SOURCES:
    raise ValueError(f'--source={source}: unknown; use one of {", ".join(SOURCES)}')
  if source == 'tfhub':  # TensorFlow, not torch; the converter imports it.
    from biggan_jax.convert import tfhub
    meta, g_vars, d_vars = tfhub.convert_folder(input_path)
  elif source == 'huggingface':  # read without torch (huggingface.read_weights).
    from biggan_jax.convert import huggingface
    meta, g_vars, d_vars = huggingface.convert_folder(input_path)
  else:
    try:
      import torch  # only to say how to install it where it is missing.
      del torch
    except ImportError:
      raise ValueError(f'--source={source} reads PyTorch files with torch: '
                       'pip install "biggan_jax[convert]"') from None
    from biggan_jax.convert import biggan_pytorch
    meta, g_vars, d_vars = biggan_pytorch.convert_folder(input_path)
  converted.save(output, meta, g_vars, d_vars, overwrite=overwrite)
  return converted.read_meta(output)
