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

--profile also times one convolution alone (XLA's, with the cores it keeps
busy, against torch's) and traces 5 of our steps with jax.profiler, XLA:CPU's per-thunk
TraceMe on (XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true, which this sets),
and prints the time per kind of thunk (convolutions, YNNPACK dot fusions,
copies/transposes, ...) in ms per iteration (tracing slows the step).
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import tempfile
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import biggan_pytorch_iteration  # noqa: E402
import timing  # noqa: E402
import train_step  # noqa: E402

from biggan_jax import config as config_lib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def the_config(resolution: int):
  config = config_lib.from_file(os.path.join(REPO, 'configs', 'digits.py'))
  config.model.update(resolution=resolution, ch=16, d_ch=16, dim_z=128, shared_dim=128,
                      num_classes=1000, g_attn='', d_attn='')
  config.update(batch_size=32, num_d_steps=1, augment='', mode_seeking=0.0, ortho_beta=0.0)
  return config




def profile(compiled, holder, steps: int = 5) -> list[tuple[str, float]]:
  """(kind of thunk, ms per iteration), most first, from a jax.profiler trace."""
  folder = tempfile.mkdtemp()
  jax.profiler.start_trace(folder, create_perfetto_trace=True)
  for _ in range(steps):
    holder['state'], metrics = compiled(holder['state'], holder['batch'])
    jax.block_until_ready(metrics)
  jax.profiler.stop_trace()
  trace = json.load(gzip.open(glob.glob(f'{folder}/**/*.json.gz', recursive=True)[-1]))
  kinds = collections.Counter()
  for e in trace['traceEvents'] if isinstance(trace, dict) else trace:
    name = e.get('name', '')
    if e.get('ph') == 'X' and not name.startswith(('ThunkExecutor', '$', 'Pjit', 'Common')):
      kinds[re.sub(r'\.\d+$', '', name)] += e.get('dur', 0) / 1000 / steps
  return kinds.most_common(12)


def one_convolution(iters: int = 20) -> dict:
  """One 3x3 'SAME' convolution, batch 64 of 32x32x64 -> 64 channels, forward: XLA's
  and torch's ms, and the process CPU seconds per wall second while XLA's runs (1.0: one
  core busy)."""
  import resource
  import torch
  from jax import lax
  conv = jax.jit(lambda x, k: lax.conv_general_dilated(
      x, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
  x, k = jax.numpy.ones((64, 32, 32, 64)), jax.numpy.ones((3, 3, 64, 64))
  conv(x, k).block_until_ready()
  cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
  cpu0, wall0 = cpu(), time.perf_counter()
  for _ in range(iters):
    conv(x, k).block_until_ready()
  wall = time.perf_counter() - wall0
  busy = (cpu() - cpu0) / wall
  xt, wt = torch.ones(64, 64, 32, 32), torch.ones(64, 64, 3, 3)
  torch_s = timing.median_seconds(lambda: torch.nn.functional.conv2d(xt, wt, padding=1), iters, 2)
  return dict(xla_ms=1000 * wall / iters, torch_ms=1000 * torch_s, xla_cores_busy=busy)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--biggan_pytorch', required=True,
                      help='a checkout of ajbrock/BigGAN-PyTorch')
  parser.add_argument('--resolution', type=int, default=32)
  parser.add_argument('--iters', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--profile', action='store_true')
  args = parser.parse_args(argv)
  if args.profile:  # before the backend starts
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '')
                               + ' --xla_cpu_enable_xprof_traceme=true')
  if not os.path.exists(os.path.join(args.biggan_pytorch, 'BigGAN.py')):
    print(f'error: --biggan_pytorch={args.biggan_pytorch}: no BigGAN.py there', file=sys.stderr)
    return 2
  from biggan_jax import cli
  cli.skip_absent_tpu()  # no libtpu probe on a CPU host
  conv = one_convolution() if args.profile else None  # before torch's threads exist
  import torch
  config = the_config(args.resolution)
  step_fn, state, batch = train_step.build(config)
  compiled, compile_s, _ = train_step.compile_step(step_fn, state, batch)
  holder = {'state': state, 'batch': batch}

  def ours():
    holder['state'], metrics = compiled(holder['state'], batch)
    jax.block_until_ready(metrics)

  ours_s = timing.median_seconds(ours, args.iters, args.warmup)
  theirs_s = timing.median_seconds(biggan_pytorch_iteration.build(args.biggan_pytorch, config,
                                                    torch.device('cpu')),
                    args.iters, args.warmup)
  print(f'device: {train_step.device_name()}; jax {jax.__version__}, torch '
        f'{torch.__version__} ({torch.get_num_threads()} threads); compile {compile_s:.1f} s')
  print('| model | biggan_jax s/it | BigGAN-PyTorch s/it | ratio |\n|---|---:|---:|---:|')
  print(f'| {args.resolution}x{args.resolution}, ch 16, batch 32, 1 D step | {ours_s:.3f} | '
        f'{theirs_s:.3f} | {ours_s / theirs_s:.2f} |')
  if args.profile:
    c = conv
    print(f"one convolution (64x32x32x64, 3x3, 64 out): XLA {c['xla_ms']:.1f} ms using "
          f"{c['xla_cores_busy']:.2f} cores; torch {c['torch_ms']:.1f} ms")
    kinds = profile(compiled, holder)
    total = sum(ms for _, ms in kinds)
    print('| thunk kind | ms/iteration (traced) | share |\n|---|---:|---:|')
    for kind, ms in kinds:
      print(f'| {kind} | {ms:.0f} | {ms / total:.0%} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
