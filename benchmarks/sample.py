"""Sampling throughput at 128x128: biggan_jax's generator against pytorch-pretrained-BigGAN's.

    python benchmarks/sample.py [--family=biggan_deep|biggan] [--batch_sizes=1,2,4,...,256]
                                [--dtype=float32|bfloat16] [--iters=10] [--warmup=2] [--torch=auto|off]

biggan_jax: the G of configs/imagenet128_deep.py (BigGAN-deep 128: ch 128, 2
blocks per stage, attention at 64) with the pretrained models' 128-channel
output conv (as a converted biggan-deep-128 has it: the same computation as
the package's model) or, with --family=biggan, of
configs/imagenet128.py (the paper's BigGAN 128, ch 96), random weights, in
eval mode, the call `load_generator(...).sample` makes (`module.apply(v, z, y,
train=False)` jitted with the variables as an argument) on the first device
JAX finds. Per batch size: compiled ahead of time (its seconds are reported,
not timed), --warmup untimed calls, then --iters calls each blocked on
(`block_until_ready`); images/s = batch / median call time. z and the class
ids are already on the device, so drawing z and copying images to the host
are not measured.

pytorch-pretrained-BigGAN (when torch and pytorch_pretrained_biggan import;
nothing is downloaded): `BigGAN(BigGANConfig())`, its biggan-deep-128
architecture with random weights, `.eval()` under `torch.no_grad()`, on CUDA
when torch sees a GPU, else on the CPU; z and one-hot classes already on the
device, `torch.cuda.synchronize()` after each call on a GPU. The ratio column
is biggan_jax images/s over PyTorch's. It has BigGAN-deep only, so
--family=biggan prints the JAX column alone.

Prints the devices, the models' parameter counts and a markdown table
(benchmarks/README.md has the rows measured so far). Needs no TensorFlow.
"""

import logging
import os
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

import timing  # benchmarks/timing.py, beside this file
from biggan_jax import config as config_lib
from biggan_jax import models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {'biggan_deep': 'configs/imagenet128_deep.py', 'biggan': 'configs/imagenet128.py'}
ACCELERATOR_BATCHES = '1,2,4,8,16,32,64,128,256'
CPU_BATCHES = '1,4,16'
TORCH_TRUNCATION = 0.5  # its forward needs one; it only picks BN statistics.

_FAMILY = flags.DEFINE_enum('family', 'biggan_deep', list(CONFIGS),
                            'Which 128x128 generator biggan_jax runs.')
_BATCH_SIZES = flags.DEFINE_list(
    'batch_sizes', None, f'Batch sizes to time (default {ACCELERATOR_BATCHES} on an '
    f'accelerator, {CPU_BATCHES} on the CPU).')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', list(config_lib.DTYPES),
                           "biggan_jax's compute dtype (parameters stay float32); "
                           'PyTorch runs float32.')
_ITERS = flags.DEFINE_integer('iters', 10, 'Timed calls per batch size; the median is used.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls per batch size after compiling.')
_TORCH = flags.DEFINE_enum('torch', 'auto', ['auto', 'off'],
                           'auto: also time pytorch-pretrained-BigGAN when it imports.')




def jax_device() -> str:
  d = jax.devices()[0]
  name = f'{d.device_kind} ({d.platform})'
  return name + (f', {os.cpu_count()} cores' if d.platform == 'cpu' else '')


def jax_generator(family: str, dtype: str):
  """(module, variables, model config): the 128x128 G with random weights on device 0."""
  m = config_lib.from_file(os.path.join(REPO, CONFIGS[family])).model
  m.dtype = dtype
  if family == 'biggan_deep':  # the pretrained models' 128-channel output conv, as the package.
    m.output_conv_channels = m.ch
  module = models.create_generator(m)
  z = jnp.zeros((1, m.dim_z), jnp.float32)
  y = jnp.zeros((1,), jnp.int32)
  variables = jax.jit(lambda k: module.init({'params': k}, z, y, train=False))(
      jax.random.PRNGKey(0))
  return module, jax.block_until_ready(variables), m


def time_jax(module, variables, m, batch: int, iters: int, warmup: int) -> dict:
  program = jax.jit(lambda v, z, y: module.apply(v, z, y, train=False))
  z = jax.random.truncated_normal(jax.random.PRNGKey(batch), -2.0, 2.0, (batch, m.dim_z))
  y = jnp.arange(batch, dtype=jnp.int32) % m.num_classes
  start = time.perf_counter()
  compiled = program.lower(variables, z, y).compile()
  compile_s = time.perf_counter() - start
  images = compiled(variables, z, y)
  assert images.shape == (batch, m.resolution, m.resolution, 3), images.shape
  seconds = timing.median_seconds(lambda: compiled(variables, z, y).block_until_ready(), iters, warmup)
  return {'images_per_s': batch / seconds, 'ms': 1000 * seconds, 'compile_s': compile_s}


def torch_generator():
  """(model, torch device, its description), or None when torch or the package is missing."""
  try:
    import torch
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig
  except ImportError:
    return None
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  torch.manual_seed(0)
  model = BigGAN(BigGANConfig()).eval().to(device)
  name = (f'{torch.cuda.get_device_name(device)} (cuda)' if device.type == 'cuda'
          else f'cpu, {torch.get_num_threads()} threads')
  return model, device, f'{name}, torch {torch.__version__}'


def time_torch(model, device, batch: int, iters: int, warmup: int) -> dict:
  import torch
  config = model.config
  generator = torch.Generator().manual_seed(batch)
  z = torch.randn(batch, config.z_dim, generator=generator).clamp(-2, 2).to(device)
  classes = torch.nn.functional.one_hot(torch.arange(batch) % config.num_classes,
                                        config.num_classes).float().to(device)
  sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)

  def call():
    with torch.no_grad():
      images = model(z, classes, TORCH_TRUNCATION)
    sync()
    return images

  assert tuple(call().shape) == (batch, 3, config.output_dim, config.output_dim)
  seconds = timing.median_seconds(call, iters, warmup)
  return {'images_per_s': batch / seconds, 'ms': 1000 * seconds}


def _batch_sizes() -> list[int]:
  on_cpu = jax.devices()[0].platform == 'cpu'
  values = _BATCH_SIZES.value or (CPU_BATCHES if on_cpu else ACCELERATOR_BATCHES).split(',')
  try:
    sizes = [int(v) for v in values]
  except ValueError:
    sizes = []
  if not sizes or min(sizes) < 1:
    raise app.UsageError(f'--batch_sizes={",".join(values)}: give positive integers, e.g. 1,4,16')
  return sizes


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if _ITERS.value < 1 or _WARMUP.value < 0:
    raise app.UsageError('--iters must be >= 1 and --warmup >= 0')
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)  # its TPU probe
  sizes = _batch_sizes()
  module, variables, m = jax_generator(_FAMILY.value, _DTYPE.value)
  g_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables['params']))
  print(f'biggan_jax: {CONFIGS[_FAMILY.value]} G ({m.family}, {m.resolution}x{m.resolution}, '
        f'ch {m.ch}, {g_params:,} parameters, {m.dtype}) on {jax_device()}, jax {jax.__version__}')

  torch_model = None
  if _TORCH.value == 'auto' and _FAMILY.value == 'biggan_deep':
    torch_model = torch_generator()
    if torch_model is None:
      print('pytorch-pretrained-BigGAN: not installed (pip install -e ".[convert]" '
            'pytorch-pretrained-biggan); JAX column only')
    else:
      model, device, name = torch_model
      count = sum(p.numel() for p in model.parameters())
      print(f'pytorch-pretrained-BigGAN: BigGAN(BigGANConfig()) (biggan-deep-128, '
            f'{count:,} parameters, float32, random weights) on {name}')
      if (device.type == 'cuda') != (jax.devices()[0].platform == 'gpu'):
        print('note: JAX and PyTorch run on different kinds of device here; the ratio '
              'compares devices as much as code', file=sys.stderr)
  elif _FAMILY.value == 'biggan':
    print('pytorch-pretrained-BigGAN has BigGAN-deep only: JAX column only')

  header = ['batch', 'biggan_jax images/s', 'ms/batch', 'compile s']
  if torch_model:
    header += ['PyTorch images/s', 'PyTorch ms/batch', 'ratio JAX/PyTorch']
  print('\n| ' + ' | '.join(header) + ' |\n|' + '---|' * len(header), flush=True)
  for batch in sizes:
    j = time_jax(module, variables, m, batch, _ITERS.value, _WARMUP.value)
    cells = [batch, f"{j['images_per_s']:.3g}", f"{j['ms']:.1f}", f"{j['compile_s']:.1f}"]
    if torch_model:
      t = time_torch(torch_model[0], torch_model[1], batch, _ITERS.value, _WARMUP.value)
      cells += [f"{t['images_per_s']:.3g}", f"{t['ms']:.1f}",
                f"{j['images_per_s'] / t['images_per_s']:.2f}"]
    print('| ' + ' | '.join(str(c) for c in cells) + ' |', flush=True)


if __name__ == '__main__':
  app.run(main)
