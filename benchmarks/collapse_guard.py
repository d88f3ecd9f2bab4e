"""Calibrates the collapse guard (training/collapse_guard.py) on runs with and without a divergence.

  python benchmarks/collapse_guard.py train --config=configs/digits.py --workdir=/tmp/cg/healthy \
      --steps=2000
  python benchmarks/collapse_guard.py train --config=configs/digits.py --workdir=/tmp/cg/spike \
      --steps=2000 --spike_step=1200 --spike_factor=100
  python benchmarks/collapse_guard.py analyse /tmp/cg/healthy /tmp/cg/spike --start=500

`train` runs the training loop as `python -m biggan_jax.main` would (guard in
'warn' mode, so it only logs), with sv_every 50 and log_every 10 unless
overridden (`--set model.resolution=16` overrides any other field); `--spike_step` multiplies both learning rates by `--spike_factor`
for `--spike_len` steps from that step on (an optax schedule patched into
training/state.py's `optimizers`): a divergence at a known step.

`analyse` replays each workdir's metrics.jsonl through the two statistics the
guard thresholds, from `--start` on: the largest ratio of a G weight's σ0 to
its value at the oldest tracking of the last `--sigma0_window` steps, and D's
loss above the median of its previous `--window` logged values. It prints
their largest values, where they occur, and the alarms the guard's detector
raises with the given thresholds.
"""

import argparse
import json
import sys

import numpy as np


def train(args) -> None:
  import jax.numpy as jnp
  import optax
  from biggan_jax import config as config_lib
  from biggan_jax.training import loop
  from biggan_jax.training import state as train_state

  import ast
  config = config_lib.from_file(args.config)
  for item in args.set:
    key, value = item.split('=', 1)
    try:
      value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      pass  # a string
    config.update_from_flattened_dict({key: value})
  config.total_steps = args.steps
  config.sv_every, config.log_every = args.sv_every, args.log_every
  config.sample_every, config.checkpoint_every = 0, args.checkpoint_every
  config.collapse_guard.remedy = 'warn'
  config.collapse_guard.start = args.start
  if args.spike_step:
    def spiked(lr):
      a, b = args.spike_step, args.spike_step + args.spike_len
      return lambda count: lr * jnp.where((count >= a) & (count < b), args.spike_factor, 1.0)

    def optimizers(c):
      return (optax.adam(spiked(c.lr_g), b1=c.b1_g, b2=c.b2_g, eps=c.eps_g),
              optax.adam(spiked(c.lr_d), b1=c.b1_d, b2=c.b2_d, eps=c.eps_d))
    train_state.optimizers = optimizers
  loop.train_and_evaluate(config, args.workdir)


def _rows(workdir):
  with open(f'{workdir}/metrics.jsonl') as f:
    return [json.loads(line) for line in f if line.strip()]


def analyse(args) -> None:
  import ml_collections
  from biggan_jax import config as config_lib
  from biggan_jax.training import collapse_guard

  guard = config_lib.base_config().collapse_guard
  guard.start = args.start
  if args.sigma0_growth:
    guard.sigma0_growth = args.sigma0_growth
  if args.d_loss_jump:
    guard.d_loss_jump = args.d_loss_jump
  guard.d_loss_window = args.window
  guard.sigma0_window = args.sigma0_window
  for workdir in args.workdirs:
    rows = [r for r in _rows(workdir) if 'd_loss_real' in r]
    sv = [r for r in rows if any(k.startswith('sv0/G/') for k in r)]
    growth = []
    for i, cur in enumerate(sv):
      if cur['step'] < args.start:
        continue
      older = [r for r in sv[:i] if r['step'] >= cur['step'] - args.sigma0_window]
      if not older:
        continue
      ref = older[0]
      ratios = {k: cur[k] / ref[k] for k in cur
                if k.startswith('sv0/G/') and ref.get(k, 0) > 0}
      name = max(ratios, key=ratios.get)
      growth.append((ratios[name], cur['step'], name[len('sv0/G/'):]))
    excess, history = [], []
    for r in rows:
      d = r['d_loss_real'] + r['d_loss_fake']
      if r['step'] >= args.start and len(history) >= args.window // 2:
        excess.append((d - float(np.median(history[-args.window:])), r['step'], d))
      history.append(d)
    print(f'{workdir}: {len(rows)} logged steps, {len(sv)} trackings, '
          f'last step {rows[-1]["step"]}')
    if growth:
      g = sorted(growth, reverse=True)
      print(f'  σ0 growth within {args.sigma0_window} steps: median {np.median([x[0] for x in growth]):.3g}, '
            f'99th pct {np.percentile([x[0] for x in growth], 99):.3g}; largest: '
            + ', '.join(f'{v:.3g} at {s} ({n})' for v, s, n in g[:3]))
    if excess:
      e = sorted(excess, reverse=True)
      print(f'  D loss above running median: median {np.median([x[0] for x in excess]):.3g}, '
            f'99th pct {np.percentile([x[0] for x in excess], 99):.3g}; largest: '
            + ', '.join(f'{v:.3g} at {s} (D {d:.3g})' for v, s, d in e[:3]))
    detector = collapse_guard.Detector(ml_collections.ConfigDict(guard.to_dict()))
    alarms = [a for a in (detector.observe(r['step'], r) for r in rows) if a]
    print(f'  alarms with sigma0_growth={guard.sigma0_growth}, d_loss_jump='
          f'{guard.d_loss_jump}, patience={guard.patience}, start={guard.start}: '
          + ('; '.join(f'step {a.step} (healthy up to {a.last_healthy}): {a.reason}'
                       for a in alarms[:4]) or 'none'))


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest='command', required=True)
  t = sub.add_parser('train')
  t.add_argument('--config', required=True)
  t.add_argument('--workdir', required=True)
  t.add_argument('--steps', type=int, default=2000)
  t.add_argument('--sv_every', type=int, default=50)
  t.add_argument('--log_every', type=int, default=10)
  t.add_argument('--checkpoint_every', type=int, default=500)
  t.add_argument('--start', type=int, default=500)
  t.add_argument('--spike_step', type=int, default=0)
  t.add_argument('--spike_factor', type=float, default=100.0)
  t.add_argument('--spike_len', type=int, default=20)
  t.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
  a = sub.add_parser('analyse')
  a.add_argument('workdirs', nargs='+')
  a.add_argument('--start', type=int, default=500)
  a.add_argument('--window', type=int, default=20)
  a.add_argument('--sigma0_window', type=int, default=1000)
  a.add_argument('--sigma0_growth', type=float, default=0)
  a.add_argument('--d_loss_jump', type=float, default=0)
  args = parser.parse_args(argv)
  train(args) if args.command == 'train' else analyse(args)


if __name__ == '__main__':
  main(sys.argv[1:])
