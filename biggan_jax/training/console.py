"""What a training run prints on stdout (process 0): the step's compile time,
progress, the closing summary, a finished workdir, and `--dry_run`'s plan.

Lines, not logging: absl's INFO (and with it Orbax's and TF's notes) is off
unless --verbosity=info (cli.py), so these are what a user reads. Progress
lines time steps only: the step is compiled ahead of the first one
(`compile_step`), and sampling, checkpointing and evaluation are kept out of
the rates by the loop.
"""

import shlex
import time

import jax
from etils import epath

from biggan_jax import config as config_lib
from biggan_jax.checkpoints import run_checkpoints
from biggan_jax.data import sources


def say(*lines: str) -> None:
  if jax.process_index() == 0:
    print('\n'.join(lines), flush=True)


def duration(seconds: float) -> str:
  """8.2s, 3m05s, 2h03m."""
  if seconds < 60:
    return f'{seconds:.1f}s'
  minutes = int(seconds) // 60
  if minutes < 60:
    return f'{minutes}m{int(seconds) % 60:02d}s'
  return f'{minutes // 60}h{minutes % 60:02d}m'


def compile_step(step_fn, *args) -> float:
  """Compiles the jitted step for `args` ahead of time and prints how long it
  took. jax.jit keeps the executable, so the loop's first call runs it at once
  and the first progress line times a step, not XLA. Returns the seconds."""
  start = time.time()
  if jax.process_index() == 0:
    print('compiling the train step...', end=' ', flush=True)
  step_fn.lower(*args).compile()
  seconds = time.time() - start
  say(duration(seconds))
  return seconds


def progress(step: int, total: int, scalars: dict) -> None:
  """One line per logging step: rate, losses, ETA at that rate (and ADA's p)."""
  eta = int((total - step) / max(scalars['steps_per_sec'], 1e-9))
  ada = f" | p {scalars['augment_p']:.3f}" if 'augment_p' in scalars else ''
  say(f"step {step}/{total} | {scalars['images_per_sec']:.1f} img/s | "
      f"D {scalars['d_loss_real'] + scalars['d_loss_fake']:.3f} G {scalars['g_loss']:.3f}"
      f"{ada} | ETA {eta // 3600}h{eta % 3600 // 60:02d}m{eta % 60:02d}s")


def _steps(steps) -> str:
  steps = sorted(steps)
  shown = ', '.join(str(s) for s in steps[-4:])
  return f'step {shown}' if len(steps) == 1 else f'steps {"..., " if len(steps) > 4 else ""}{shown}'


def written(workdir, checkpoint_steps) -> list[str]:
  """What the workdir holds now, one line per kind."""
  workdir = epath.Path(workdir)
  lines = []
  if checkpoint_steps:
    lines.append(f'  {workdir / "checkpoints"}/  {_steps(checkpoint_steps)}')
  sheets = sorted(p.name for p in (workdir / 'samples').glob('step_*.png'))
  if sheets:
    lines.append(f'  {workdir / "samples"}/  {len(sheets)} sample sheets, the last '
                 f'{sheets[-1]}')
  if (workdir / 'best_fid').exists():
    lines.append(f'  {workdir / "best_fid"}/  the EMA G of the lowest FID')
  plots = [n for n in ('losses.png', 'sigma0.png', 'truncation.png', 'd_overfit.png')
           if (workdir / n).exists()]
  if plots:
    lines.append(f'  {workdir}/{{{",".join(plots)}}}')
  lines.append(f'  {workdir / "metrics.jsonl"} and TensorBoard events '
               f'(tensorboard --logdir={shlex.quote(str(workdir))})')
  return lines


def next_commands(config, workdir) -> list[str]:
  """What users run on a finished workdir."""
  w = shlex.quote(str(workdir))
  commands = [f'python -m biggan_jax.sample --checkpoint={w} --output=sheet.png']
  if config.dataset.name == 'digits':
    commands.append(f'python -m biggan_jax.digits_eval --workdir={w}')
  ref = config.eval_ref_stats or 'REF.npz'
  commands.append(f'python -m biggan_jax.evaluate --checkpoint={w} --ref_stats={ref} '
                  '--output=metrics.json' + ('' if config.eval_ref_stats else
                  '  (REF.npz: python -m biggan_jax.fid --save_stats=REF.npz DATA)'))
  return commands


def summary(config, workdir, *, first: int, last: int, seconds: float,
            compile_seconds: float, checkpoint_steps) -> None:
  """The closing lines: steps and time, where everything is, what to run next."""
  total = config.total_steps
  if last < total:
    head = (f'stopped at step {last} of {total} (preempted), checkpoint saved; the same '
            'command resumes it')
  else:
    head = f'trained steps {first + 1}-{last} of {total}'
  say(f'{head} in {duration(seconds)} (compiling the step {duration(compile_seconds)})',
      *written(workdir, checkpoint_steps), 'next:',
      *(f'  {c}' for c in next_commands(config, workdir)))


def already_trained(config, workdir, step: int, checkpoint_steps) -> None:
  """A rerun of a finished workdir: nothing to do, nothing rewritten."""
  say(f'{workdir}: already trained to step {step} (total_steps={config.total_steps}); '
      'nothing to do. A larger --config.total_steps trains on.',
      *written(workdir, checkpoint_steps), 'next:',
      *(f'  {c}' for c in next_commands(config, workdir)))


# ---------------------------------------------------------------------------
# --dry_run
# ---------------------------------------------------------------------------

def _saves(every: int, start: int, total: int) -> int:
  """How many of steps start+1..total are multiples of `every` or the last."""
  if not every:
    return 0
  multiples = total // every - start // every
  return multiples + (total % every != 0 and total > start)


def _cadence(every: int, total: int) -> str:
  return f'every {every:,} steps and at step {total:,}' if total % every else (
      f'every {every:,} steps')


def latest_step(workdir) -> int | None:
  """The workdir's latest checkpoint step (None: none), creating nothing."""
  directory = epath.Path(workdir) / 'checkpoints'
  if not directory.is_dir():
    return None
  return run_checkpoints.manager(directory, read_only=True).latest_step()


def compilation_cache_dir(workdir) -> str:
  """Where a run keeps JAX's persistent compilation cache: the one the user set
  (JAX_COMPILATION_CACHE_DIR), else WORKDIR/compilation_cache, so that a restarted
  or preempted run on the same devices compiles nothing."""
  return jax.config.jax_compilation_cache_dir or str(epath.Path(workdir) / 'compilation_cache')


def dry_run(config, workdir: str) -> str:
  """The resolved config, the devices and batch split, and what the run would
  write in `workdir`, after the checks the run makes first; creates nothing
  (StyleGAN's --dry-run). 'digits' data is not checked: that writes its folder."""
  if config.dataset.name != 'digits':
    sources.check(config)
  latest = latest_step(workdir)
  devices = jax.devices()
  total, start = config.total_steps, latest or 0
  if config.num_accumulations == config_lib.AUTO:
    split = ('num_accumulations=auto: the fewest micro-batches whose step fits these '
             "devices, chosen when the run starts from the compiler's verdict")
  else:
    micro = config.batch_size // config.num_accumulations
    split = (f'= {config.num_accumulations} x {micro} (num_accumulations x micro-batch); '
             f'per device {micro // len(devices)}')
  lines = ['config (as WORKDIR/config.json):', config.to_json_best_effort(indent=2),
           f'devices: {len(devices)} x {devices[0].device_kind} ({devices[0].platform}) '
           f'over {jax.process_count()} process(es)',
           f'batch: {config.batch_size} per update {split}, per '
           f'host {config.batch_size // jax.process_count()}; {config.num_d_steps} D steps '
           f'per G step, each on a fresh real batch: '
           f'{config.num_d_steps * config.batch_size * total / 1000:,.1f} kimg of real '
           'images in all']
  if latest is None:
    lines.append(f'workdir {workdir}: new; the run would train steps 1-{total:,} and write')
  elif latest >= total:
    lines += [f'workdir {workdir}: already trained to step {latest:,}; the run '
              'would do nothing', 'dry run: nothing was created']
    return '\n'.join(lines)
  else:
    lines.append(f'workdir {workdir}: resumes from step {latest:,}; the run would '
                 f'train steps {latest + 1:,}-{total:,} and write')
  n = _saves(config.checkpoint_every, start, total)
  lines += ['  config.json',
            f'  checkpoints/<step>/{{{",".join(run_checkpoints.ITEMS)}}}  '
            f'{_cadence(config.checkpoint_every, total)} ({n} saves; the last '
            f'{config.max_to_keep} kept), with losses.png and sigma0.png',
            f'  metrics.jsonl and TensorBoard events: a row every {config.log_every:,} '
            'steps']
  if config.sample_every:
    rows = config.num_sample_rows
    lines.append(f'  samples/step_<N>.png  {_cadence(config.sample_every, total)} '
                 f'({_saves(config.sample_every, start, total)} sheets of {rows}x{rows})')
  if config.truncations:
    lines.append('  truncation.png  at the end (τ = '
                 f'{", ".join(map(str, config_lib.truncation_thresholds(config)))})')
  cache = compilation_cache_dir(workdir)
  if cache.startswith(str(workdir)):
    lines.append('  compilation_cache/  the compiled step, so that a restart compiles nothing')
  if config.eval_every:
    lines.append(f'  best_fid/  FID against {config.eval_ref_stats} '
                 f'{_cadence(config.eval_every, total)}, the best EMA G kept')
    if config.eval_heldout_split:
      lines.append('  d_overfit.png  at the end')
  lines.append('dry run: nothing was created')
  return '\n'.join(lines)
