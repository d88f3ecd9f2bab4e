"""Our train step against BigGAN-PyTorch's iteration, same model and batch, on this CPU.

    python benchmarks/cpu_vs_torch.py --biggan_pytorch=PATH [--iters=10] [--resolution=32]

The model of issue #21's measurement: configs/digits.py at --resolution (32: G
and D 32x32), ch 16, dim_z 128 hierarchical, a shared embedding of 128, 1,000
classes, no attention, 1 D step, batch 32, float32, with neither augmentation,
mode seeking nor orthogonal regularisation, so both sides do the same work.
Ours: benchmarks/train_step.py's build (the step as training builds it, on one
CPU device, compiled ahead of time); theirs: upstream's own modules
(benchmarks/biggan_pytorch_iteration.py) with torch's default threads. Prints
both medians in s/iteration and the ratio (ours / theirs; < 1 is faster): the
row of benchmarks/README.md's "The CPU path against BigGAN-PyTorch".
"""

import argparse
import os
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import biggan_pytorch_iteration  # noqa: E402
import train_step  # noqa: E402

from biggan_jax import config as config_lib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def the_config(resolution: int):
  config = config_lib.from_file(os.path.join(REPO, 'configs', 'digits.py'))
  config.model.update(resolution=resolution, ch=16, d_ch=16, dim_z=128, shared_dim=128,
                      num_classes=1000, g_attn='', d_attn='')
  config.update(batch_size=32, num_d_steps=1, augment='', mode_seeking=0.0, ortho_beta=0.0)
  return config


def median(call, iters: int, warmup: int) -> float:
  for _ in range(warmup):
    call()
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--biggan_pytorch', required=True,
                      help='a checkout of ajbrock/BigGAN-PyTorch')
  parser.add_argument('--resolution', type=int, default=32)
  parser.add_argument('--iters', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=3)
  args = parser.parse_args(argv)
  if not os.path.exists(os.path.join(args.biggan_pytorch, 'BigGAN.py')):
    print(f'error: --biggan_pytorch={args.biggan_pytorch}: no BigGAN.py there', file=sys.stderr)
    return 2
  import torch
  config = the_config(args.resolution)
  step_fn, state, batch = train_step.build(config)
  compiled, compile_s, _ = train_step.compile_step(step_fn, state, batch)
  holder = {'state': state}

  def ours():
    holder['state'], metrics = compiled(holder['state'], batch)
    jax.block_until_ready(metrics)

  ours_s = median(ours, args.iters, args.warmup)
  theirs_s = median(biggan_pytorch_iteration.build(args.biggan_pytorch, config,
                                                    torch.device('cpu')),
                    args.iters, args.warmup)
  print(f'device: {train_step.device_name()}; jax {jax.__version__}, torch '
        f'{torch.__version__} ({torch.get_num_threads()} threads); compile {compile_s:.1f} s')
  print('| model | biggan_jax s/it | BigGAN-PyTorch s/it | ratio |\n|---|---:|---:|---:|')
  print(f'| {args.resolution}x{args.resolution}, ch 16, batch 32, 1 D step | {ours_s:.3f} | '
        f'{theirs_s:.3f} | {ours_s / theirs_s:.2f} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
