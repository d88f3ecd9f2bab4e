"""GCS stopped in the middle of a checkpoint save, then back: how the run ends and what
restores. The GCS emulator (tests/gcs_fixture.py) is stopped as soon as checkpoint 2's
folder appears in its storage; prints the run's exit code, when it came, its stderr
without tracebacks, and, with the emulator back, the steps Orbax lists and the one
`restore_ema_generator` restores.

  python benchmarks/gcs_outage.py
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'tests'))


def main():
  import gcs_fixture
  scratch = tempfile.mkdtemp()
  emulator = gcs_fixture.Emulator(f'{scratch}/gcs').start()
  emulator.bucket('outage')
  env = {**os.environ, **emulator.env, 'JAX_PLATFORMS': 'cpu'}
  try:
    proc = subprocess.Popen(
        [sys.executable, '-m', 'biggan_jax.main', f'--config={REPO}/configs/tiny.py',
         '--workdir=gs://outage/run', '--config.total_steps=4', '--config.checkpoint_every=1',
         '--config.sample_every=0'], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    while not os.path.isdir(f'{scratch}/gcs/outage/run/checkpoints/2'):
      time.sleep(0.005)
    emulator.stop()
    stopped = time.monotonic()
    _, err = proc.communicate()
    print(f'exit {proc.returncode}, {time.monotonic() - stopped:.0f} s after GCS stopped')
    print('\n'.join(line[:300] for line in err.splitlines()
                    if not line.startswith((' ', 'Traceback', 'The above', 'During'))))
    emulator.start()
    code = ('from biggan_jax.checkpoints import run_checkpoints as r\n'
            "d = 'gs://outage/run/checkpoints'\n"
            "print('listed', r.manager(d, read_only=True).all_steps(), "
            "'restored', r.restore_ema_generator(d)[0]['step'])")
    print(subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env, text=True,
                         capture_output=True).stdout.strip())
  finally:
    emulator.stop()
    shutil.rmtree(scratch)


if __name__ == '__main__':
  main()
