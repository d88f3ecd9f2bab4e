"""BigGAN-deep on ImageNet 128x128 (Brock et al. 2019, the BigGAN-deep appendix).

    python -m biggan_jax.main --config=configs/imagenet128_deep.py --workdir=runs/imagenet128_deep

Hardware: a TPU pod slice or a multi-host GPU cluster; the paper trained each
model on 128 to 512 TPUv3 cores. With num_accumulations='auto' (as shipped;
docs/tpu.md, "Auto accumulation") a run takes the fewest micro-batches that fit
its devices: 4 on a v4-8 in float32 by the TPU compiler's table in
docs/tpu.md, and 2 in bfloat16 compute, at a faster estimated step.
Check a slice before renting it:

    python -m biggan_jax.main --config=configs/imagenet128_deep.py --workdir=runs/check \\
      --mode=compile --topology=v4-8

Compute: float32, as the paper. bfloat16 (--config.model.dtype=bfloat16
--config.dataset.image_dtype=uint8) is recommended only where float32 does not
fit or is too slow: on the digits demo it trains stably, a little above
float32's FID (docs/tpu.md, "bfloat16 compute", links the numbers).

BigGAN-deep: bottleneck residual blocks, two per resolution (g_depth =
d_depth = 2), ch 128, dim_z 128, shared embedding of 128, self-attention at
64x64 in G and D. hierarchical_z=True is how BigGAN-deep conditions every
block on the whole z concatenated with the class embedding (no chunks).
Training as in the paper: batch 2048, 2 D steps per G step, lr G 5e-5 /
D 2e-4, orthogonal regularisation 1e-4, EMA 0.9999.

What the paper reached: the final version's abstract reports IS 166.5 / FID
7.4 at 128x128 with truncation, up from the first version's figures for BigGAN
(configs/imagenet128.py's docstring) once BigGAN-deep was added; the
per-model truncation sweeps are in Table 2 of the paper. G 50.2M + D 34.6M
parameters (BigGAN-PyTorch's BigGAN-deep at this config).
"""

from biggan_jax import config as config_lib


def get_config():
  config = config_lib.base_config()
  m = config.model
  m.family = 'biggan_deep'
  m.resolution = 128
  m.ch = 128
  m.dim_z = 128
  m.shared_dim = 128
  m.hierarchical_z = True
  m.g_depth = 2
  m.d_depth = 2
  m.g_attn = '64'
  m.d_attn = '64'
  config.dataset.name = 'imagenet2012'
  config.num_accumulations = 'auto'
  return config
