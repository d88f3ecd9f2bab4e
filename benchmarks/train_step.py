"""Throughput of one BigGAN training iteration on whatever device is present.

    python benchmarks/train_step.py --config=configs/imagenet128.py --batch_size=16 \\
      --dtype=bfloat16 --steps=10 [--config.model.ch=32 ...] [--write]

Builds the step exactly as training does, with training/sharded_step.py's `build`
(the mesh, the state layout, the jitted init and the jitted step with its
in/out shardings and donate_argnums=0, as the loop and --mode=compile use
them; one data.fake.fake_batch put on the mesh once and reused) and measures:
- compile: seconds to lower and compile the jitted step (ahead of time);
- GFLOP/it: XLA's cost analysis of the compiled step (an estimate: XLA counts a
  loop body once), and TFLOP/s = GFLOP/it / step / 1000, the rate achieved;
- step: median wall time of --steps iterations after --warmup, each blocked on;
- G+D it/s: iterations per second, 1 / step; one iteration = num_d_steps D
  updates + 1 G update + EMA, as train_step.train_step;
- images/s: batch_size * num_d_steps / step, the real images D sees per second
  (train.py logs the same as images_per_sec); G's fakes are not counted;
- peak memory: max over local devices of memory_stats()['peak_bytes_in_use'],
  'n/a' where the backend has no memory stats (CPU).
Prints one markdown table row (benchmarks/README.md explains the columns);
--write appends it to benchmarks/README.md. Imports neither train.py nor clu.
"""

import datetime
import os
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from biggan_jax import config as config_lib
from biggan_jax.data import fake
from biggan_jax.training import auto_accumulation, sharding
from biggan_jax.training import state as train_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, 'benchmarks', 'README.md')

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(REPO, 'configs', 'imagenet128.py'),
    'A configs/*.py file; override fields with --config.<key>=<value>.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', None,
                                   'Global batch size (default: the config\'s batch_size).')
_DTYPE = flags.DEFINE_enum('dtype', None, list(config_lib.DTYPES),
                           'Compute dtype, config.model.dtype (default: the config\'s).')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed iterations; the median is reported.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed iterations after compilation.')
_WRITE = flags.DEFINE_bool('write', False, 'Append the row to benchmarks/README.md.')

COLUMNS = ('date', 'device', 'config', 'res', 'ch', 'batch', 'D steps', 'dtype', 'compile s',
           'GFLOP/it', 'step ms', 'G+D it/s', 'images/s', 'TFLOP/s', 'SV ms',
           'SV % of step', 'peak memory', 'jax', 'command')


def device_name() -> str:
  """'<device_kind> (<platform>) x<count>'; on CPU also the host's core count."""
  d = jax.devices()[0]
  name = f'{d.device_kind} ({d.platform}) x{jax.device_count()}'
  if d.platform == 'cpu':
    name += f', {os.cpu_count()} cores'
  return name


def peak_memory_bytes():
  """Peak device memory over local devices, or None where the backend keeps no stats."""
  peaks = []
  for d in jax.local_devices():
    stats = d.memory_stats() if hasattr(d, 'memory_stats') else None
    if stats and 'peak_bytes_in_use' in stats:
      peaks.append(stats['peak_bytes_in_use'])
  return max(peaks) if peaks else None


def build(config):
  """(jitted step, state, batch) for `config`, laid out on the mesh as training does
  (num_accumulations=auto resolved as training resolves it)."""
  config_lib.validate(config)
  config, train, _ = auto_accumulation.build(config)
  state = train.init(jax.random.PRNGKey(config.seed))
  batch = sharding.host_to_global(fake.fake_batch(config, 0, jax.process_index()),
                                  train.mesh, batch_axis=2)
  return train.step, jax.block_until_ready(state), jax.block_until_ready(batch)


def compile_step(step_fn, state, batch):
  """(compiled step, seconds to lower and compile it, its FLOPs per XLA's cost analysis)."""
  start = time.perf_counter()
  compiled = step_fn.lower(state, batch).compile()
  seconds = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return compiled, seconds, (cost or {}).get('flops')


def benchmark(config, *, steps: int, warmup: int) -> dict:
  """Compiles and times config's train step; returns the measurements."""
  step_fn, state, batch = build(config)
  compiled, compile_s, flops = compile_step(step_fn, state, batch)
  # --------------------------------------------------------------- timing
  for _ in range(warmup):
    state, metrics = compiled(state, batch)
  jax.block_until_ready((state, metrics) if warmup else state)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  step_s = statistics.median(times)
  sv_s = time_sv_tracker(state, steps)
  return dict(compile_s=compile_s, flops=flops, step_s=step_s, iterations_per_s=1.0 / step_s,
              sv_s=sv_s, sv_amortised=sv_s / config.sv_every / step_s,
              images_per_s=config.batch_size * config.num_d_steps / step_s,
              peak_memory_bytes=peak_memory_bytes(), times=times,
              metrics={k: float(v) for k, v in jax.device_get(metrics).items()})


def time_sv_tracker(state, calls: int) -> float:
  """Median seconds of one singular-value tracking of all of G and D.

  The step runs it under lax.cond every `sv_every` steps, so the timed steps
  above (none of them a multiple of sv_every) exclude it; its amortised cost
  is sv / sv_every / step.
  """
  track = jax.jit(train_state.track_singular_values)
  jax.block_until_ready(track(state.g_params, state.d_params))
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    jax.block_until_ready(track(state.g_params, state.d_params))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _gflop(flops) -> str:
  return 'n/a' if flops is None else f'{flops / 1e9:.3g}'


def _format_bytes(n) -> str:
  return 'n/a' if n is None else f'{n / 2**30:.2f} GiB'


def markdown_row(config, result, config_path: str, command: str) -> str:
  m = config.model
  cells = (datetime.date.today().isoformat(), device_name(),
           os.path.relpath(config_path, REPO) if os.path.isabs(config_path) else config_path,
           m.resolution, m.ch, config.batch_size, config.num_d_steps, m.dtype,
           f'{result["compile_s"]:.1f}', _gflop(result['flops']),
           f'{1000 * result["step_s"]:.0f}',
           f'{result["iterations_per_s"]:.3g}', f'{result["images_per_s"]:.3g}',
           'n/a' if result['flops'] is None else f'{result["flops"] / result["step_s"] / 1e12:.3g}',
           f'{1000 * result["sv_s"]:.0f}',
           f'{100 * result["sv_amortised"]:.2g} (every {config.sv_every})',
           _format_bytes(result['peak_memory_bytes']), jax.__version__, f'`{command}`')
  return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def _command(argv) -> str:
  args = [a for a in argv[1:] if a not in ('--write', '--nowrite')]
  return ' '.join(['python benchmarks/train_step.py', *args])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  config = _CONFIG.value
  if _BATCH_SIZE.value is not None:
    config.batch_size = _BATCH_SIZE.value
  if _DTYPE.value is not None:
    config.model.dtype = _DTYPE.value
  if _STEPS.value < 1 or _WARMUP.value < 0:
    raise app.UsageError('--steps must be >= 1 and --warmup >= 0')
  try:
    result = benchmark(config, steps=_STEPS.value, warmup=_WARMUP.value)
  except config_lib.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  config_path = config_flags.get_config_filename(flags.FLAGS['config'])
  row = markdown_row(config, result, config_path, _command(sys.argv))
  print(f'step times (s): {" ".join(f"{t:.3f}" for t in result["times"])}', file=sys.stderr)
  print('| ' + ' | '.join(COLUMNS) + ' |')
  print('|' + '---|' * len(COLUMNS))
  print(row)
  if _WRITE.value:
    if not os.path.exists(README):
      with open(README, 'w') as f:
        f.write('# Benchmarks\n\n| ' + ' | '.join(COLUMNS) + ' |\n|' + '---|' * len(COLUMNS) + '\n')
    with open(README, 'a') as f:
      f.write(row + '\n')


if __name__ == '__main__':
  app.run(main)
