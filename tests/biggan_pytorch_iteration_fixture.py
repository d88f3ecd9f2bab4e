"""Writes tests/testdata/biggan_pytorch_iteration_{plain,accum}_f64.npz: whole training
iterations of BigGAN-PyTorch's own `train_fns.GAN_training_function`, in float64.

    python tests/biggan_pytorch_iteration_fixture.py --biggan_pytorch=PATH

PATH is a checkout of ajbrock/BigGAN-PyTorch (@98459431; `git clone
https://github.com/ajbrock/BigGAN-PyTorch`). Its modules are imported from PATH and run
unmodified: BigGAN.Generator / Discriminator / G_D, utils.ema, utils.prepare_z_y and
utils.Distribution, the Adam optimizers its G and D build, train_fns.GAN_training_function
(its D steps, accumulation, utils.ortho and EMA update). This script only builds the tiny
models, gives the real batches, and records what upstream draws and computes: it wraps
Distribution.sample_ (z_ and y_ are drawn inside the training function) and
losses.discriminator_loss / generator_loss (the function returns only the last
micro-batch's losses). tests/training/test_iteration_parity.py replays the draws through
biggan_jax's step; tests/testdata/README.md lists the keys.

It lives in tests/ beside the other fixture writers (tests/testdata holds data only);
users and CI never run it, they read the committed .npz.

upstream's utils imports torchvision (datasets, image saving) at import time; where that
import fails (the CPU torch here has no matching torchvision), empty stand-in modules
are installed first: nothing the training function calls uses them.
"""

import argparse
import pathlib
import sys
import types

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent / 'testdata'

# The tiny model (BigGAN.py at 32x32: 3 G blocks, 4 D blocks; widths 4 * ch = 8 channels,
# so the attention's theta/phi have C/8 = 1 channel), kept small so that three snapshots
# of G, D, both Adam states and the EMA G stay well under a megabyte per variant.
MODEL = dict(G_ch=2, D_ch=2, dim_z=16, shared_dim=8, hier=True, G_shared=True,
             resolution=32, n_classes=5, G_attn='16', D_attn='0', SN_eps=1e-6,
             BN_eps=1e-5, G_init='ortho', D_init='ortho')
OPTIM = dict(G_lr=5e-5, D_lr=2e-4, G_B1=0.0, D_B1=0.0, G_B2=0.999, D_B2=0.999,
             adam_eps=1e-6)
# (a) the paper's iteration: 2 D steps, G's modified ortho reg in gradient form;
# (b) upstream's ImageNet launch script's shape: 1 D step, no ortho, 2 accumulations each.
VARIANTS = {
    'plain': dict(batch_size=6, num_D_steps=2, num_D_accumulations=1,
                  num_G_accumulations=1, G_ortho=1e-3),
    'accum': dict(batch_size=4, num_D_steps=1, num_D_accumulations=2,
                  num_G_accumulations=2, G_ortho=0.0),
}
EMA = dict(ema_decay=0.9, ema_start=2)  # iteration 1 copies G, iteration 2 decays.
ITERATIONS = 2


def _placeholder(attr):
  if attr.startswith('__'):
    raise AttributeError(attr)
  return type(attr, (), {})


def _stub_torchvision():
  try:
    import torchvision.transforms  # noqa: F401
    import torchvision.datasets.utils  # noqa: F401
    return
  except Exception:  # a torchvision built for another torch raises RuntimeError.
    pass
  for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
    del sys.modules[name]
  names = ('torchvision', 'torchvision.transforms', 'torchvision.datasets',
           'torchvision.datasets.utils', 'torchvision.utils')
  mods = {n: types.ModuleType(n) for n in names}
  for m in mods.values():  # any name (e.g. datasets.CIFAR10, a base class) is a placeholder.
    m.__getattr__ = _placeholder
  for n, m in mods.items():
    parent, _, child = n.rpartition('.')
    if parent:
      setattr(mods[parent], child, m)
  sys.modules.update(mods)


def _arrays(prefix, state_dict):
  return {f'{prefix}/{k}': v.detach().cpu().numpy().copy() for k, v in state_dict.items()}


def _adam(prefix, model):
  """exp_avg / exp_avg_sq of every parameter, by the parameter's state-dict name."""
  out = {}
  for name, p in model.named_parameters():
    st = model.optim.state[p]
    out[f'{prefix}_exp_avg/{name}'] = st['exp_avg'].detach().numpy().copy()
    out[f'{prefix}_exp_avg_sq/{name}'] = st['exp_avg_sq'].detach().numpy().copy()
  steps = {float(model.optim.state[p]['step']) for p in model.parameters()}
  out[f'{prefix}_adam_step'] = np.asarray(steps.pop())
  assert not steps
  return out


def make(path: str, variant: str, seed: int = 0) -> dict:
  import torch
  torch.set_default_dtype(torch.float64)
  sys.path.insert(0, path)
  _stub_torchvision()
  import BigGAN
  import losses
  import train_fns
  import utils

  v = VARIANTS[variant]
  config = vars(utils.prepare_parser().parse_args([]))  # upstream's defaults ...
  config.update(MODEL, **OPTIM, **v, **EMA, G_batch_size=v['batch_size'], ema=True,
                D_ortho=0.0, toggle_grads=True, split_D=False)  # ... and ours.
  torch.manual_seed(seed)
  G = BigGAN.Generator(**config)
  D = BigGAN.Discriminator(**config)
  G_ema = BigGAN.Generator(**{**config, 'skip_init': True, 'no_optim': True})
  with torch.no_grad():  # every path on from the first step: attention's output counts.
    for name, p in G.named_parameters():
      if name.endswith('gamma'):
        p.fill_(0.5)
  ema = utils.ema(G, G_ema, config['ema_decay'], config['ema_start'])
  GD = BigGAN.G_D(G, D)
  z_, y_ = utils.prepare_z_y(config['G_batch_size'], config['dim_z'], config['n_classes'],
                             device='cpu')
  z_ = z_.to('cpu', torch.float64)  # prepare_z_y casts z to float32; this run is float64.

  draws = {'normal': [], 'categorical': []}
  sample = utils.Distribution.sample_

  def recorded_sample(self):
    sample(self)
    draws[self.dist_type].append(self.detach().clone().numpy())

  micro = {'D_loss_real': [], 'D_loss_fake': [], 'G_loss': []}
  d_loss, g_loss = losses.discriminator_loss, losses.generator_loss

  def recorded_d_loss(dis_fake, dis_real):
    real, fake = d_loss(dis_fake, dis_real)
    micro['D_loss_real'].append(real.item())
    micro['D_loss_fake'].append(fake.item())
    return real, fake

  def recorded_g_loss(dis_fake):
    loss = g_loss(dis_fake)
    micro['G_loss'].append(loss.item())
    return loss

  utils.Distribution.sample_ = recorded_sample
  losses.discriminator_loss, losses.generator_loss = recorded_d_loss, recorded_g_loss

  out = _arrays('G_init', G.state_dict())
  out.update(_arrays('D_init', D.state_dict()))
  gen = torch.Generator().manual_seed(seed + 1)
  chunks = config['num_D_steps'] * config['num_D_accumulations']
  n = chunks * config['batch_size']
  state_dict = {'itr': 0}
  train = train_fns.GAN_training_function(G, D, GD, z_, y_, ema, state_dict, config)
  try:
    for it in range(1, ITERATIONS + 1):
      # Pixels as uint8 (stored so), mapped to [-1, 1] as ToTensor + Normalize(0.5, 0.5)
      # would: u / 127.5 - 1 is one correctly rounded division and subtraction, so the test
      # rebuilds the same float64 batch bit for bit.
      pixels = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
      x = pixels.to(torch.float64) / 127.5 - 1
      y = torch.randint(0, config['n_classes'], (n,), generator=gen)
      for k in draws:
        draws[k].clear()
      for k in micro:
        micro[k].clear()
      state_dict['itr'] += 1  # train.py: the counter moves before the iteration runs.
      G.train(), D.train(), G_ema.train()  # as train.py sets them every iteration.
      ret = train(x, y)
      out[f'it{it}/x_uint8_nchw'] = pixels.numpy()
      out[f'it{it}/y'] = y.numpy()
      out[f'it{it}/z_draws'] = np.stack(draws['normal'])
      out[f'it{it}/y_draws'] = np.stack(draws['categorical']).astype(np.int64)
      for k, vals in micro.items():
        out[f'it{it}/micro_{k}'] = np.asarray(vals)
        out[f'it{it}/returned_{k}'] = np.asarray(ret[k])
      out.update(_arrays(f'it{it}/G', G.state_dict()))
      out.update(_arrays(f'it{it}/D', D.state_dict()))
      out.update(_arrays(f'it{it}/G_ema', G_ema.state_dict()))
      out.update(_adam(f'it{it}/G', G))
      out.update(_adam(f'it{it}/D', D))
  finally:
    utils.Distribution.sample_ = sample
    losses.discriminator_loss, losses.generator_loss = d_loss, g_loss
  out['config'] = np.asarray(repr({**{k: config[k] for k in MODEL}, **OPTIM, **v, **EMA,
                                   'model': 'BigGAN', 'variant': variant,
                                   'iterations': ITERATIONS}))
  assert not any(a.dtype == np.float32 for a in out.values())
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--biggan_pytorch', required=True,
                      help='a checkout of ajbrock/BigGAN-PyTorch (@98459431)')
  parser.add_argument('--out', default=str(OUT))
  args = parser.parse_args(argv)
  if not (pathlib.Path(args.biggan_pytorch) / 'train_fns.py').is_file():
    parser.error(f'--biggan_pytorch={args.biggan_pytorch}: no train_fns.py there')
  for variant in VARIANTS:
    path = pathlib.Path(args.out) / f'biggan_pytorch_iteration_{variant}_f64.npz'
    np.savez_compressed(path, **make(args.biggan_pytorch, variant))
    print(f'{path}: {path.stat().st_size / 1e3:.0f} kB')


if __name__ == '__main__':
  main()
