"""BigGAN on ImageNet 256x256 (Brock et al. 2019, Sec. 4.1).

    python -m biggan_jax.main --config=configs/imagenet256.py --workdir=runs/imagenet256

Hardware: a TPU pod slice or a multi-host GPU cluster; the paper trained each
model on 128 to 512 TPUv3 cores. G 82.1M + D 99.2M parameters. With
num_accumulations='auto' (as shipped; docs/tpu.md, "Auto accumulation") a run
takes the fewest micro-batches that fit its devices: 16 on a v4-8 in float32 by
the TPU compiler's table in docs/tpu.md (8 does not fit), and 8 in bfloat16
compute, at a faster estimated step. Check a slice
before renting it:

    python -m biggan_jax.main --config=configs/imagenet256.py --workdir=runs/check \\
      --mode=compile --topology=v4-8

Compute: float32, as the paper. bfloat16 (--config.model.dtype=bfloat16
--config.dataset.image_dtype=uint8) is recommended only where float32 does not
fit or is too slow: on the digits demo it trains stably, a little above
float32's FID (docs/tpu.md, "bfloat16 compute", links the numbers).

The paper's 128x128 settings (configs/imagenet128.py) with dim_z 140 (7
hierarchical chunks of 20), G attention at 128x128 and D attention at 64x64,
as in BigGAN-PyTorch's 256 model and the released 256 generator.

What the paper reached: see Table 2 of the paper (BigGAN, 256x256) for IS and
FID along the truncation sweep.
"""

from biggan_jax import config as config_lib


def get_config():
  config = config_lib.base_config()
  m = config.model
  m.family = 'biggan'
  m.resolution = 256
  m.ch = 96
  m.dim_z = 140
  m.shared_dim = 128
  m.g_attn = '128'
  m.d_attn = '64'
  config.dataset.name = 'imagenet2012'
  config.num_accumulations = 'auto'
  return config
