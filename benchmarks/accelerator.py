"""One command that turns a lent GPU (or TPU VM) into benchmarks/README.md rows.

    python benchmarks/accelerator.py [--biggan_pytorch=PATH] [--out=accelerator.json]
    python benchmarks/accelerator.py --smoke    # every part at tiny sizes, on CPU (CI)

Parts, each in this one process, on the first device JAX finds:
1. the train step of configs/imagenet128.py (the paper's BigGAN 128, ch 96) at
   --batch_per_device (x the local devices), num_accumulations=auto as a run
   chooses it (training/auto_accumulation.py), in float32 and in bfloat16
   compute: images/s, ms per step, TFLOP/s (FLOPs counted from the jaxpr at loop
   trip counts, aot/flops.py) and MFU, the model FLOPs (3 x forward,
   aot/report.py's model_flops) over the chip's published peak (PEAKS below;
   float32 matmuls run as TF32 on NVIDIA GPUs, JAX's default precision, so
   their peak is TF32's);
2. with --biggan_pytorch=PATH (a checkout of ajbrock/BigGAN-PyTorch): its own
   BigGAN.Generator / Discriminator / G_D at the same model and batch, on the
   same device, one iteration as its train_fns.GAN_training_function runs it
   (num_D_steps D steps with the hinge loss of its losses.py, a G step with the
   orthogonal regulariser's gradient form, Adam, the EMA of G) in float32;
   the ratio is ours over theirs in images/s (benchmarks/biggan_pytorch_iteration.py);
3. sampling at 128x128 at --sample_batch: biggan_jax's BigGAN-deep 128 G beside
   pytorch-pretrained-BigGAN's (when that package imports; random weights,
   nothing downloaded), as benchmarks/sample.py times them.
Writes --out (JSON) and prints the Markdown rows for benchmarks/README.md's
"Accelerators" table. Needs no TensorFlow (the GPU machines have none).
"""

import argparse
import datetime
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sample as sample_bench  # noqa: E402  (benchmarks/sample.py)
import timing  # noqa: E402

from biggan_jax import config as config_lib  # noqa: E402
from biggan_jax.aot import flops as flops_lib  # noqa: E402
from biggan_jax.aot import report as report_lib  # noqa: E402
from biggan_jax.data import fake  # noqa: E402
from biggan_jax.training import auto_accumulation, sharded_step, sharding  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Published dense peaks per chip, FLOP/s: (bfloat16, float32 as the chip runs it).
PEAKS = {
    'NVIDIA H100 80GB HBM3': (989e12, 494.7e12),   # H100 SXM datasheet (TF32 for float32)
    'NVIDIA H200': (989e12, 494.7e12),             # H200 SXM datasheet, H100's compute
    'NVIDIA A100-SXM4-80GB': (312e12, 156e12),     # A100 datasheet (TF32)
    'NVIDIA A100-SXM4-40GB': (312e12, 156e12),
}


def device_name(count: int) -> str:
  d = jax.devices()[0]
  return f'{count} x {d.device_kind} ({d.platform})'


def peak_flops(dtype: str) -> float | None:
  """The first device's published peak for `dtype` compute, per device; None if unknown."""
  d = jax.devices()[0]
  if d.platform == 'tpu':  # device_kind 'TPU v4', 'TPU v5 lite', 'TPU v5p', 'TPU v6 lite'...
    from biggan_jax.aot import topologies
    kind = d.device_kind.lower().replace('tpu ', '').replace(' lite', 'e').replace(' ', '')
    chip = topologies.CHIPS.get(kind)
    return chip.bf16_flops / chip.devices if chip else None
  peaks = PEAKS.get(d.device_kind)
  return None if peaks is None else peaks[0 if dtype == 'bfloat16' else 1]




def step_config(args, dtype: str):
  config = config_lib.from_file(os.path.join(REPO, 'configs', 'imagenet128.py'))
  config.batch_size = args.batch_per_device * (1 if args.smoke else jax.local_device_count())
  config.model.dtype = dtype
  config.dataset.image_dtype = 'uint8' if dtype == 'bfloat16' else 'float32'
  if args.smoke:
    config.model.update(resolution=16, ch=4, g_attn='', d_attn='', dim_z=8, shared_dim=4,
                        num_classes=10)
  return config


def time_step(args, dtype: str) -> dict:
  """Part 1: the train step as a run builds it, timed after it compiled."""
  config = step_config(args, dtype)
  devices = jax.local_devices()[:1] if args.smoke else None  # smoke: one device compiles faster
  config, train, record = auto_accumulation.build(config, devices)
  state = train.init(jax.random.PRNGKey(0))
  batch = sharding.host_to_global(fake.fake_batch(config, 0, jax.process_index()),
                                  train.mesh, batch_axis=2)
  start = time.perf_counter()
  traced = train.step.trace(state, batch)
  compiled = traced.lower().compile()
  compile_s = time.perf_counter() - start
  step_flops = flops_lib.jaxpr_flops(traced.jaxpr, [])
  model_flops, _, _ = report_lib.model_flops(config, train, state)
  holder = {'state': state}

  def call():
    holder['state'], metrics = compiled(holder['state'], batch)
    jax.block_until_ready(metrics)

  seconds = timing.median_seconds(call, args.iters, args.warmup)
  peak = peak_flops(dtype)
  n = train.mesh.devices.size
  return dict(part='train step', model='imagenet128' + (' (smoke)' if args.smoke else ''),
              dtype=dtype, batch_size=config.batch_size,
              num_accumulations=config.num_accumulations,
              auto=record['line'] if record else None, compile_s=compile_s,
              ms_per_step=1000 * seconds,
              images_per_s=config.batch_size * config.num_d_steps / seconds,
              tflops_per_s=step_flops / seconds / 1e12,
              mfu=None if peak is None else min(model_flops, step_flops) / seconds / (peak * n))


def time_biggan_pytorch(args, path: str) -> dict:
  """Part 2: BigGAN-PyTorch's iteration at the float32 step's model and batch."""
  import torch
  import biggan_pytorch_iteration
  config = step_config(args, 'float32')
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  k = max(1, args.torch_accumulations)
  iteration = biggan_pytorch_iteration.build(path, config, device, k)
  seconds = timing.median_seconds(iteration, args.iters, args.warmup)
  return dict(part='BigGAN-PyTorch iteration', dtype='float32', batch_size=config.batch_size,
              num_accumulations=k, ms_per_step=1000 * seconds,
              images_per_s=config.batch_size * config.num_d_steps / seconds,
              torch=torch.__version__, device=str(device))


def time_sampling(args) -> list[dict]:
  """Part 3: benchmarks/sample.py's two generators at one batch size."""
  rows = []
  family = 'biggan_deep'
  if args.smoke:  # a small G, random weights
    m = config_lib.from_file(os.path.join(REPO, 'configs', 'tiny.py')).model
    from biggan_jax import models
    module = models.create_generator(m)
    variables = jax.jit(lambda k: module.init({'params': k}, jnp.zeros((1, m.dim_z)),
                                              jnp.zeros((1,), jnp.int32), train=False))(
        jax.random.PRNGKey(0))
  else:
    module, variables, m = sample_bench.jax_generator(family, 'float32')
  ours = sample_bench.time_jax(module, variables, m, args.sample_batch, args.iters, args.warmup)
  rows.append(dict(part='sampling', model=f'{family} 128' if not args.smoke else 'tiny',
                   batch_size=args.sample_batch, **ours))
  if not args.smoke:
    theirs = sample_bench.torch_generator()  # None without torch or the package
    batch, model_name = args.sample_batch, 'biggan-deep-128'
  else:  # the package's 128x128 architecture at channel width 8, batch 1
    try:
      import torch
      from pytorch_pretrained_biggan import BigGAN, BigGANConfig
      theirs = (BigGAN(BigGANConfig(channel_width=8)).eval(), torch.device('cpu'), 'cpu')
    except ImportError:
      theirs = None
    batch, model_name = 1, 'biggan-deep-128 at width 8'
  if theirs is not None:
    model, device, name = theirs
    rows.append(dict(part='sampling (pytorch-pretrained-BigGAN)', model=model_name,
                     batch_size=batch, device=name,
                     **sample_bench.time_torch(model, device, batch, args.iters, args.warmup)))
  return rows


def markdown(rows, device: str) -> list[str]:
  """The rows of benchmarks/README.md's "Accelerators" table."""
  today = datetime.date.today().isoformat()
  fmt = lambda v, f: 'n/a' if v is None else format(v, f)
  out = []
  for r in rows:
    out.append(f"| {today} | {device} | {r['part']} | {r.get('model', '')} | "
               f"{r.get('dtype', 'float32')} | {r['batch_size']} | "
               f"{r.get('num_accumulations', '')} | {fmt(r.get('ms_per_step', r.get('ms')), '.1f')} | "
               f"{fmt(r['images_per_s'], ',.0f')} | {fmt(r.get('tflops_per_s'), '.3g')} | "
               f"{fmt(r.get('mfu'), '.2f')} |")
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_per_device', type=int, default=256)
  parser.add_argument('--sample_batch', type=int, default=64)
  parser.add_argument('--iters', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--biggan_pytorch', default=None,
                      help='a checkout of ajbrock/BigGAN-PyTorch, for its iteration')
  parser.add_argument('--torch_accumulations', type=int, default=None,
                      help="BigGAN-PyTorch's num_D/G_accumulations (default: the k auto chose "
                           'for float32)')
  parser.add_argument('--out', default='accelerator.json')
  parser.add_argument('--smoke', action='store_true',
                      help='every part at tiny sizes (CI, on CPU): checks the script, measures '
                           'nothing worth keeping')
  args = parser.parse_args(argv)
  if args.smoke:
    args.batch_per_device, args.sample_batch, args.iters, args.warmup = 1, 2, 1, 1
  if args.biggan_pytorch and not os.path.exists(os.path.join(args.biggan_pytorch, 'BigGAN.py')):
    print(f'error: --biggan_pytorch={args.biggan_pytorch}: no BigGAN.py there; give a '
          'checkout of https://github.com/ajbrock/BigGAN-PyTorch', file=sys.stderr)
    return 2
  device = device_name(1 if args.smoke else jax.local_device_count())
  print(f'device: {device}; jax {jax.__version__}', flush=True)
  rows = []
  for dtype in ('float32', 'bfloat16'):
    rows.append(time_step(args, dtype))
    print(json.dumps(rows[-1]), flush=True)
  if args.biggan_pytorch:
    if args.torch_accumulations is None:
      args.torch_accumulations = rows[0]['num_accumulations']
    rows.append(time_biggan_pytorch(args, args.biggan_pytorch))
    rows[-1]['ratio'] = rows[0]['images_per_s'] / rows[-1]['images_per_s']
    print(json.dumps(rows[-1]), flush=True)
  rows += time_sampling(args)
  ours, theirs = rows[-2:] if len(rows) > 1 and 'pytorch' in rows[-1]['part'] else (None, None)
  if ours and theirs:
    theirs['ratio'] = ours['images_per_s'] / theirs['images_per_s']
  with open(args.out, 'w') as f:
    json.dump(dict(device=device, jax=jax.__version__, date=datetime.date.today().isoformat(),
                   smoke=args.smoke, rows=rows), f, indent=1)
  print('| date | device | part | model | dtype | batch | k | ms/step | images/s | TFLOP/s | MFU |')
  print('|---|---|---|---|---|---:|---:|---:|---:|---:|---:|')
  print('\n'.join(markdown(rows, device)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
