"""launch/*.sh: the commands their --dry_run prints, and one-line errors for bad arguments."""

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from paths import REPO
LAUNCH = REPO / 'launch'
MAIN = ['python3', '-m', 'biggan_jax.main']
BASH = shutil.which('bash')


def run(script, *args, env=None, cwd=REPO):
  clean = {k: v for k, v in os.environ.items()
           if k not in ('TPU_NAME', 'ZONE', 'PROJECT_ID', 'DRY_RUN', 'PYTHON')}
  clean.update(env or {})
  return subprocess.run([BASH, str(LAUNCH / script), *args], cwd=cwd, env=clean,
                        capture_output=True, text=True, timeout=60)


def remote_main_argv(ssh_line: str) -> list[str]:
  """The argv of biggan_jax.main inside the ssh line's --command."""
  command = next(a for a in shlex.split(ssh_line) if a.startswith('--command='))
  return shlex.split(command.removeprefix('--command=').split('; ')[-1])


TPU_ARGS = ('--tpu=my-tpu', '--zone=us-central2-b', '--project=my-project',
            '--config=configs/tiny.py', '--workdir=gs://my-bucket/runs/tiny',
            '--config.batch_size=16', '--config.model.g_attn=')
MAIN_ARGV = [*MAIN, '--config=configs/tiny.py', '--workdir=gs://my-bucket/runs/tiny',
             '--config.batch_size=16', '--config.model.g_attn=', '--mode=summary']


@pytest.mark.parametrize('script,workers', [('tpu_vm.sh', []), ('tpu_pod.sh', ['--worker=all'])])
def test_tpu_dry_run_prints_pack_copy_and_run(script, workers):
  result = run(script, *TPU_ARGS, '--dry_run', '--', '--mode=summary')
  assert result.returncode == 0, result.stderr
  assert result.stderr == ''
  pack, scp, ssh = result.stdout.splitlines()
  assert pack.startswith(f'git -C {REPO} ls-files') and '| tar ' in pack
  tarball = shlex.split(pack)[-1]
  assert shlex.split(scp) == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'scp', tarball,
                              'my-tpu:biggan_jax_src.tar.gz', '--zone=us-central2-b',
                              '--project=my-project', *workers]
  assert shlex.split(ssh)[:8] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'my-tpu',
                                  '--zone=us-central2-b', '--project=my-project']
  assert ('--worker=all' in shlex.split(ssh)) == bool(workers)
  assert 'pip install -q -U "jax[tpu]" -e .' in ssh
  # No coordinator flags on Cloud TPU: JAX finds the slice's hosts itself.
  assert remote_main_argv(ssh) == MAIN_ARGV


def test_tpu_pod_takes_its_arguments_from_the_environment():
  result = run('tpu_pod.sh', '--config=configs/tiny.py', '--workdir=gs://b/r',
               env={'TPU_NAME': 'pod', 'ZONE': 'europe-west4-a', 'DRY_RUN': '1'})
  assert result.returncode == 0, result.stderr
  ssh = result.stdout.splitlines()[-1]
  assert shlex.split(ssh)[5:8] == ['pod', '--zone=europe-west4-a', '--worker=all']
  assert remote_main_argv(ssh) == [*MAIN, '--config=configs/tiny.py', '--workdir=gs://b/r']


def test_tpu_quotes_what_the_shells_would_split(tmp_path):
  """Values with spaces and quotes reach main intact through both shells."""
  workdir = "gs://b/it's a run"
  result = run('tpu_vm.sh', '--tpu=t', '--zone=z', f'--config={REPO}/configs/tiny.py',
               f'--workdir={workdir}', '--dry_run', cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert remote_main_argv(result.stdout.splitlines()[-1]) == [
      *MAIN, '--config=configs/tiny.py', f'--workdir={workdir}']


def test_local_dry_run_one_process():
  result = run('local.sh', '--config=configs/tiny.py', '--workdir=runs/tiny',
               '--config.batch_size=16', '--dry_run', '--', '--mode=summary')
  assert result.returncode == 0, result.stderr
  assert [shlex.split(line) for line in result.stdout.splitlines()] == [
      [*MAIN, '--config=configs/tiny.py', '--workdir=runs/tiny', '--config.batch_size=16',
       '--mode=summary']]


@pytest.mark.parametrize('devices,env', [
    ('--cpu_devices=2', lambda i: ['JAX_PLATFORMS=cpu',
                                   'XLA_FLAGS=--xla_force_host_platform_device_count=2']),
    ('--gpus_per_process=2', lambda i: [f'CUDA_VISIBLE_DEVICES={2 * i},{2 * i + 1}']),
])
def test_local_dry_run_processes_on_localhost(devices, env):
  result = run('local.sh', '--config=configs/tiny.py', '--workdir=runs/tiny', '--num_processes=2',
               devices, '--port=12345', '--config.batch_size=8', env={'DRY_RUN': '1'})
  assert result.returncode == 0, result.stderr
  assert [shlex.split(line) for line in result.stdout.splitlines()] == [
      [*env(i), *MAIN, '--config=configs/tiny.py', '--workdir=runs/tiny',
       '--coordinator_address=127.0.0.1:12345', '--num_processes=2', f'--process_id={i}',
       '--config.batch_size=8'] for i in range(2)]


def test_local_runs_main(tmp_path):
  """Not only printed: local.sh runs main (summary mode: seconds, no training)."""
  result = run('local.sh', '--config=configs/tiny.py', f'--workdir={tmp_path}', '--',
               '--mode=summary', env={'PYTHON': sys.executable})
  assert result.returncode == 0, result.stderr
  assert (tmp_path / 'summary.json').exists()


TPU = ('--tpu=t', '--zone=z')
NEEDS = ('--config=configs/tiny.py', '--workdir=gs://b/r')


@pytest.mark.parametrize('script,args,expected', [
    ('tpu_vm.sh', ('--zone=z', *NEEDS), '--tpu=NAME is required'),
    ('tpu_vm.sh', ('--tpu=t', *NEEDS), '--zone=ZONE is required'),
    ('tpu_vm.sh', (*TPU, '--workdir=gs://b/r'), '--config=PATH is required'),
    ('tpu_vm.sh', (*TPU, '--config=configs/tiny.py'), '--workdir=gs://BUCKET/DIR is required'),
    ('tpu_vm.sh', (*TPU, '--config=configs/tiny.py', '--workdir=runs/x'), 'must be a gs:// path'),
    ('tpu_vm.sh', (*TPU, '--config=configs/nope.py', '--workdir=gs://b/r'),
     '--config=configs/nope.py: no such file'),
    ('tpu_pod.sh', ('--zone=z', *NEEDS), '--tpu=NAME is required'),
    ('tpu_pod.sh', (*TPU, *NEEDS, '--wroker=all'), "unknown argument '--wroker=all'"),
    ('local.sh', ('--workdir=runs/x',), '--config=PATH is required'),
    ('local.sh', ('--config=configs/tiny.py',), '--workdir=DIR is required'),
    ('local.sh', ('--config=configs/tiny.py', '--workdir=r', '--num_processes=2'),
     'give --gpus_per_process=G'),
    ('local.sh', ('--config=configs/tiny.py', '--workdir=r', '--num_processes=two'),
     '--num_processes=two: must be a positive integer'),
    ('local.sh', ('--config=configs/tiny.py', '--workdir=r', '--port=99'),
     '--port is for --num_processes > 1'),
])
def test_bad_arguments_are_one_line_and_exit_2(script, args, expected):
  result = run(script, *args, '--dry_run')
  assert result.returncode == 2
  assert result.stdout == ''
  assert result.stderr.count('\n') == 1, result.stderr
  assert result.stderr.startswith(f'error: {script}: ')
  assert expected in result.stderr


@pytest.mark.parametrize('script', ['tpu_vm.sh', 'tpu_pod.sh'])
def test_tpu_without_gcloud_stops_before_anything_runs(script, tmp_path):
  """A PATH with only what the scripts use before their gcloud check."""
  for tool in ('basename', 'dirname'):
    (tmp_path / tool).symlink_to(shutil.which(tool))
  result = run(script, *TPU, *NEEDS, env={'PATH': str(tmp_path)})
  assert result.returncode == 2
  assert result.stderr.startswith(f'error: {script}: gcloud not found')
  assert result.stderr.count('\n') == 1


@pytest.mark.parametrize('script', ['tpu_vm.sh', 'tpu_pod.sh', 'local.sh'])
def test_help_shows_usage(script):
  result = run(script, '--help')
  assert result.returncode == 0
  assert 'Usage:' in result.stdout and 'Needs' in result.stdout
