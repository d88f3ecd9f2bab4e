"""Tiny pytorch-pretrained-BigGAN models with random weights, saved as the package ships them.

`write_tiny_hf(folder)` writes config.json + pytorch_model.bin of a BigGAN-deep
128x128 (ch 4, 10 classes) built by the package itself, with every weight and
buffer random and non-trivial (51 different BN statistics per layer, attention
gamma != 0) and its SN buffers made as the package's TF converter makes them
(v = normalize(Wᵀu0), u = normalize(W v)), so tests compare against the
package's own forward pass.
"""

import json
import os

import numpy as np

TINY_CONFIG = dict(output_dim=128, z_dim=16, class_embed_dim=16, channel_width=4,
                   num_classes=10, attention_layer_position=8, eps=1e-4, n_stats=51)


def tiny_model(seed: int = 0):
  """(the package's BigGAN in eval mode, its config dict)."""
  import torch
  from pytorch_pretrained_biggan import BigGAN, BigGANConfig
  from biggan_jax.convert import huggingface
  cfg = dict(TINY_CONFIG, layers=[list(l) for l in huggingface.expected_layers(128)])
  torch.manual_seed(seed)
  model = BigGAN(BigGANConfig.from_dict(cfg))
  gen = torch.Generator().manual_seed(seed)
  rand = lambda *shape: torch.rand(*shape, generator=gen)
  with torch.no_grad():
    for name, module in model.named_modules():
      if hasattr(module, 'running_means'):
        n, c = module.running_means.shape
        module.running_means.copy_(0.2 * (rand(n, c) - 0.5))
        module.running_vars.copy_(0.5 + rand(n, c))
      if hasattr(module, 'gamma'):
        module.gamma.fill_(0.5)
      if name == 'generator.bn':
        module.weight.copy_(0.5 + rand(module.weight.shape[0]))
        module.bias.copy_(0.2 * (rand(module.bias.shape[0]) - 0.5))
      if hasattr(module, 'weight_orig'):
        w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
        u0 = torch.randn(w.shape[0], generator=gen)
        v = torch.nn.functional.normalize(w.t() @ u0, dim=0, eps=1e-4)
        module.weight_v.copy_(v)
        module.weight_u.copy_(torch.nn.functional.normalize(w @ v, dim=0, eps=1e-4))
  return model.eval(), cfg


def write_tiny_hf(folder, seed: int = 0):
  """Writes config.json and pytorch_model.bin into `folder`; returns `folder`."""
  import torch
  model, cfg = tiny_model(seed)
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, 'config.json'), 'w') as f:
    json.dump(cfg, f)
  torch.save(model.state_dict(), os.path.join(folder, 'pytorch_model.bin'))
  return folder


def reference_images(model, z: np.ndarray, y: np.ndarray, truncation: float) -> np.ndarray:
  """The package's eval-mode output as NHWC numpy."""
  import torch
  onehot = np.eye(model.config.num_classes, dtype=np.float32)[y]
  with torch.no_grad():
    out = model(torch.from_numpy(z), torch.from_numpy(onehot), truncation)
  return out.numpy().transpose(0, 2, 3, 1)
