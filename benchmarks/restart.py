"""What a restart costs: a run's start with and without the compilation cache in its workdir.

  python benchmarks/restart.py [--config=configs/digits.py] [--override=--config.x=y ...]

A preemptible slice restarts often, and every start compiles the train step
(and EMA G, sampling, evaluation) unless JAX's persistent compilation cache has
them: training keeps that cache in WORKDIR/compilation_cache by default
(training/console.py's compilation_cache_dir). Three processes of
`python -m biggan_jax.main`, one after another on the same workdir: a new run
of one step, a restart for one more step with the cache, and one with JAX's
cache disabled (JAX_ENABLE_COMPILATION_CACHE=false). Prints, for each, the
step's compile seconds as the run reports them and the process's wall time:
the row of benchmarks/README.md's "Restarts" table.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def start(config, workdir, steps, overrides, env) -> tuple[float, float]:
  """(the step's compile seconds, the process's wall seconds) of a run to `steps`."""
  begin = time.perf_counter()
  out = subprocess.run(
      [sys.executable, '-m', 'biggan_jax.main', f'--config={config}', f'--workdir={workdir}',
       f'--config.total_steps={steps}', '--config.checkpoint_every=1', *overrides],
      env=env, capture_output=True, text=True, check=True)
  wall = time.perf_counter() - begin
  return float(re.search(r'compiling the train step\.\.\. ([\d.]+)s', out.stdout)[1]), wall


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/digits.py')
  parser.add_argument('--override', action='append', default=[])
  args = parser.parse_args()
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  workdir = tempfile.mkdtemp()
  try:
    rows = [('new run', *start(args.config, workdir, 1, args.override, env)),
            ('restart, cache in the workdir', *start(args.config, workdir, 2, args.override, env)),
            ('restart, no cache', *start(args.config, workdir, 3, args.override,
                                         dict(env, JAX_ENABLE_COMPILATION_CACHE='false')))]
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  print(f'{args.config} {" ".join(args.override)}')
  print('| start | step compile s | process wall s |\n|---|---:|---:|')
  for name, compile_s, wall_s in rows:
    print(f'| {name} | {compile_s:.1f} | {wall_s:.1f} |')


if __name__ == '__main__':
  main()
