"""BigGAN on CIFAR-10 (32x32), following BigGAN-PyTorch's scripts/launch_cifar_ema.sh.

    python -m biggan_jax.main --config=configs/cifar10.py --workdir=runs/cifar10

With FID/IS every 5,000 steps (and the best-FID checkpoint kept in
runs/cifar10/best_fid), against the training set's Inception statistics:

    python -m biggan_jax.fid --save_stats=cifar10_train.npz DATA_FOLDER
    python -m biggan_jax.main --config=configs/cifar10.py --workdir=runs/cifar10 \
        --config.eval_every=5000 --config.eval_ref_stats=cifar10_train.npz

Hardware: one GPU (the upstream script uses two with DataParallel).

Upstream values: batch 50, 4 D steps per G step, lr G 2e-4 / D 2e-4, N(0, 0.02)
init, no attention, no orthogonal regularisation, EMA from iteration 1000,
500 epochs, and the train.py defaults for the rest (G_ch = D_ch = 64,
dim_z 128, no hierarchical z, Adam eps 1e-8, SN eps 1e-8, no augmentation).
500 epochs of 50,000 images at 50 x 4 images per G step is 125,000 G steps.

One difference: upstream runs this without a shared embedding (G_shared off:
every conditional BN holds its own class embedding); biggan_jax's G always
conditions through the shared embedding, here of size 128 (= dim_z, which is
what upstream's shared_dim 0 means), so G has a few more parameters.

The paper reports no CIFAR-10 numbers for this script. CIFAR FIDs depend on
the protocol (Inception weights, sample count, reference split); see
StudioGAN's BigGAN results and report the protocol with any number.
"""

from biggan_jax import config as config_lib


def get_config():
  config = config_lib.base_config()
  m = config.model
  m.resolution = 32
  m.num_classes = 10
  m.ch = 64                   # d_ch follows.
  m.dim_z = 128
  m.shared_dim = 128
  m.hierarchical_z = False
  m.g_attn = ''
  m.d_attn = ''
  m.init = 'N02'
  m.sn_eps = 1e-8

  config.batch_size = 50
  config.num_d_steps = 4
  config.lr_g = 2e-4
  config.lr_d = 2e-4
  config.eps_g = config.eps_d = 1e-8
  config.ortho_beta = 0.0
  config.ema_start = 1_000
  config.total_steps = 125_000
  config.checkpoint_every = 2_000
  config.sample_every = 2_000
  config.eval_every = 0         # FID/IS every N steps needs reference stats: see the docstring.
  config.eval_num_samples = 10_000

  config.dataset.name = 'cifar10'
  config.dataset.random_flip = False
  return config
