"""BigGAN-PyTorch's training iteration, from its own modules, for timing beside ours.

Builds ajbrock/BigGAN-PyTorch's `BigGAN.Generator`, `Discriminator` and `G_D`
from a checkout at PATH for a biggan_jax config's model, and runs one
iteration as its `train_fns.GAN_training_function` does: num_d_steps D steps
(hinge loss from its losses.py), then a G step with the orthogonal
regulariser's gradient form (when ortho_beta > 0), Adam, and the EMA of G.
train_fns and utils import torchvision (for datasets and image saving), which
the CPU wheel here lacks, so the iteration is spelled out here from the
modules it calls; benchmarks/accelerator.py and benchmarks/cpu_vs_torch.py use it.
"""

import sys


def build(path: str, config, device, accumulations: int = 1):
  """An `iteration()` callable of upstream's modules at `config`'s model and batch."""
  import torch
  sys.path.insert(0, path)
  import BigGAN  # noqa: F401  (upstream's module, from PATH)
  import losses
  m = config.model
  kwargs = dict(G_ch=m.ch, D_ch=m.d_ch or m.ch, dim_z=m.dim_z, shared_dim=m.shared_dim,
                hier=m.hierarchical_z, resolution=m.resolution, n_classes=m.num_classes,
                G_attn=m.g_attn or '0', D_attn=m.d_attn or '0', G_lr=config.lr_g,
                D_lr=config.lr_d, G_B1=config.b1_g, D_B1=config.b1_d, G_B2=config.b2_g,
                D_B2=config.b2_d, adam_eps=config.eps_g, SN_eps=m.sn_eps, BN_eps=1e-5,
                G_init='ortho', D_init='ortho')
  torch.manual_seed(0)
  G = BigGAN.Generator(**kwargs).to(device)
  D = BigGAN.Discriminator(**kwargs).to(device)
  ema = BigGAN.Generator(**dict(kwargs, skip_init=True, no_optim=True)).to(device)
  ema.load_state_dict(G.state_dict())
  GD = BigGAN.G_D(G, D)
  micro = config.batch_size // accumulations
  x = torch.randn(micro, 3, m.resolution, m.resolution, device=device)
  y = torch.randint(0, m.num_classes, (micro,), device=device)
  z = torch.randn(micro, m.dim_z, device=device)
  sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)

  def ortho(model, strength):
    # The regulariser's gradient added to each weight's (off-diagonal; 1-D parameters and
    # the shared embedding skipped), as upstream's utils.ortho.
    with torch.no_grad():
      for name, param in model.named_parameters():
        if len(param.shape) < 2 or 'shared' in name or param.grad is None:
          continue
        w = param.view(param.shape[0], -1)
        off = torch.mm(w, w.t()) * (1. - torch.eye(w.shape[0], device=w.device))
        param.grad.data += strength * (2 * torch.mm(off, w)).view(param.shape)

  def iteration():
    G.train(), D.train()
    for _ in range(config.num_d_steps):
      D.optim.zero_grad()
      for _ in range(accumulations):
        z.normal_()
        fake_out, real_out = GD(z, y, x, y, train_G=False)
        d_real, d_fake = losses.loss_hinge_dis(fake_out, real_out)
        ((d_real + d_fake) / accumulations).backward()
      D.optim.step()
    G.optim.zero_grad()
    for _ in range(accumulations):
      z.normal_()
      (losses.loss_hinge_gen(GD(z, y, train_G=True)) / accumulations).backward()
    if config.ortho_beta > 0:
      ortho(G, config.ortho_beta)
    G.optim.step()
    with torch.no_grad():
      for (_, e), (_, p) in zip(ema.state_dict().items(), G.state_dict().items()):
        e.copy_(e * config.ema_decay + p * (1 - config.ema_decay))
    sync()

  return iteration
