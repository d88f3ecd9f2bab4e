"""A BigGAN small enough for unit tests: 32x32, ch 4, G 19k + D 17k parameters.

    python -m biggan_jax.main --config=configs/tiny.py --workdir=runs/tiny

Hardware: CPU; a summary or a 4-step run takes seconds. It exercises every
feature of the full model (hierarchical z in 4 chunks of 4 for 3 G blocks + the
first linear, shared embedding, attention in G and D at 16x16, 2 D steps, EMA
from step 0, standing stats) on the synthetic 'fake' dataset. It reaches no
number: it exists so that tests run the real code paths quickly.
"""

from biggan_jax import config as config_lib


def get_config():
  config = config_lib.base_config()
  m = config.model
  m.resolution = 32
  m.num_classes = 5
  m.ch = 4                    # d_ch follows.
  m.dim_z = 16
  m.shared_dim = 8
  m.g_attn = '16'
  m.d_attn = '16'

  config.batch_size = 8
  config.num_d_steps = 2
  config.total_steps = 4
  config.log_every = 1
  config.sv_every = 2
  config.sample_every = 2
  config.checkpoint_every = 2
  config.eval_every = 0       # 0 = never.
  config.max_to_keep = 2
  config.ema_start = 0
  config.num_standing_stats = 2
  config.num_sample_rows = 2
  config.dataset.name = 'fake'  # synthetic images and labels, no download.
  return config
