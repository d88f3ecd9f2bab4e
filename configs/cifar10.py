"""BigGAN on CIFAR-10 (32x32): BigGAN-PyTorch's scripts/launch_cifar_ema.sh, flag for flag.

    python -m biggan_jax.main --config=configs/cifar10.py --workdir=runs/cifar10

With FID (and IS, given pytorch-fid's weights) every 5,000 steps, as the
script's --test_every 5000, and the best-FID checkpoint kept in
runs/cifar10/best_fid, against the training set's Inception statistics:

    python -m biggan_jax.fid --save_stats=cifar10_train.npz DATA_FOLDER
    python -m biggan_jax.main --config=configs/cifar10.py --workdir=runs/cifar10 \
        --config.eval_every=5000 --config.eval_ref_stats=cifar10_train.npz

Hardware: one GPU (the upstream script uses two with DataParallel). On a TPU
slice the batch must split over its devices: 50 does not over a v4-8's 4; at
--config.batch_size=48 the step fits a v4-8 with most of its HBM free
(--mode=compile: the cifar10 row of docs/tpu.md's table).

The script's flags, each set here: --batch_size 50, --num_D_steps 4,
--G_lr 2e-4 --D_lr 2e-4, --G_ortho 0.0, --G_attn 0 --D_attn 0, --G_init N02
--D_init N02, --ema --use_ema --ema_start 1000, --num_epochs 500 (50,000
images at 50 x 4 per G step: 125,000 G steps), --save_every 2000
(checkpoint_every), --seed 0, no --augment (no flip), --shuffle (our streams
are shuffled); and train.py's defaults for the rest: the BigGAN model with
G_ch = D_ch = 64, dim_z 128, no --G_shared (every conditional BN holds its own
class tables: model.shared_embedding=False) and no --hier, Adam (0, 0.999)
eps 1e-8, BN eps 1e-5, SN eps 1e-8, EMA decay 0.9999, one SN power step.
G has upstream's 4,304,387 parameters, D 4,207,361.

What cannot match, and why:
- --parallel runs nn.DataParallel over 2 GPUs without cross-replica BN, so
  each replica's G normalises over its half-batch of 25; biggan_jax's BN
  statistics are over the whole (sharded) batch of 50 on any device count.
- Upstream evaluates G_ema in train mode (no --G_eval_mode: batch statistics
  of each sampled batch) with 50,000 images (num_inception_images), keeps the
  5 best checkpoints by IS (--which_best IS, --num_best_copies 5) and 2
  rotating copies; biggan_jax samples the EMA G in eval mode with standing
  statistics, eval_num_samples images per eval, and keeps one best by FID
  (checkpoints/best_fid.py) beside max_to_keep=3 rotating checkpoints.
- Upstream's training-time IS/FID use torchvision's Inception (its
  "PYTORCH UNOFFICIAL" scores); biggan_jax's use the TF Inception of the FID.

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
  m.shared_embedding = False  # no --G_shared.
  m.hierarchical_z = False    # no --hier.
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
