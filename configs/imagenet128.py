"""BigGAN on ImageNet 128x128: the paper's model (Brock et al. 2019, Table 1 row 8).

    python -m biggan_jax.main --config=configs/imagenet128.py --workdir=runs/imagenet128

Hardware: a TPU pod slice or a multi-host GPU cluster; the paper trained each
model on 128 to 512 TPUv3 cores. With num_accumulations='auto' (as shipped;
docs/tpu.md, "Auto accumulation") a run takes the fewest micro-batches that fit
its devices: 2 on a v4-8 in float32 by the TPU compiler's table in
docs/tpu.md (4 with room to spare), and 2 in bfloat16 compute, at a lower
peak and a faster estimated step. Check a slice before renting it:

    python -m biggan_jax.main --config=configs/imagenet128.py --workdir=runs/check \\
      --mode=compile --topology=v4-8

Compute: float32, as the paper. bfloat16 (--config.model.dtype=bfloat16
--config.dataset.image_dtype=uint8) is recommended only where float32 does not
fit or is too slow: on the digits demo it trains stably, a little above
float32's FID (docs/tpu.md, "bfloat16 compute", links the numbers).

Settings (Sec. 3, App. C): ch 96, dim_z 120 in 6 hierarchical chunks, shared
embedding of 128, self-attention at 64x64 in G and D, batch 2048, 2 D steps
per G step, Adam(0, 0.999) with lr G 5e-5 / D 2e-4, orthogonal regularisation
beta 1e-4, EMA of G with decay 0.9999, hinge loss, orthogonal init.

What the paper reached: IS 166.3 / FID 9.6 with truncation (the first arXiv
version's abstract; the final version's figures came with BigGAN-deep, in
configs/imagenet128_deep.py's docstring). The truncation sweep is in Table 2
of the paper.

BigGAN-PyTorch's own ImageNet script (scripts/launch_BigGAN_bs256x8.sh) differs:
batch 256 x 8 accumulations, lr G 1e-4 / D 4e-4, 1 D step, no orthogonal
regularisation, EMA from step 20k. To reproduce it:

    python -m biggan_jax.main --config=configs/imagenet128.py --workdir=runs/i128_pt \\
      --config.batch_size=2048 --config.num_accumulations=8 \\
      --config.lr_g=1e-4 --config.lr_d=4e-4 --config.num_d_steps=1 \\
      --config.ortho_beta=0 --config.ema_start=20000
"""

from biggan_jax import config as config_lib


def get_config():
  config = config_lib.base_config()  # base_config() is this model; named here for the reader.
  m = config.model
  m.family = 'biggan'
  m.resolution = 128
  m.ch = 96
  m.dim_z = 120
  m.shared_dim = 128
  m.g_attn = '64'
  m.d_attn = '64'
  config.dataset.name = 'imagenet2012'
  config.num_accumulations = 'auto'
  return config
