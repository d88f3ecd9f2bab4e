"""--mode=compile: slice names as libtpu needs them, the TPU compile of a small step and
its compile.json, a step that cannot fit, and the one line without libtpu."""

import json
import os
import sys

import jax
import pytest

from biggan_jax import config as config_lib
from biggan_jax import aot
from biggan_jax.aot import report as aot_report, topologies
from biggan_jax.training import compile_check, sharded_step
from cli_checks import one_error_line, run_main
from paths import REPO

libtpu = pytest.importorskip('libtpu', reason='the [tpu] extra is not installed')

# configs/tiny.py cut to what compiles in seconds: 16x16, no attention, 1 D step.
SMALL = ['--config.model.resolution=16', '--config.model.g_attn=', '--config.model.d_attn=',
         '--config.num_d_steps=1']


def compile_cli(workdir, topology, *overrides):
  return run_main(f'--config={REPO}/configs/tiny.py', f'--workdir={workdir}', '--mode=compile',
                  f'--topology={topology}', *SMALL, *overrides)


@pytest.mark.parametrize('name, topology, devices, kwargs', [
    ('v4-8', 'v4:2x2x1', 4, dict(chip_config_name='megacore', chips_per_host_bounds=(2, 2, 1),
                                 wrap=(False,) * 3)),
    ('v4-128', 'v4:4x4x4', 64, dict(chip_config_name='megacore', chips_per_host_bounds=(2, 2, 1),
                                    wrap=(True,) * 3)),
    ('v5p-8', 'v5p:2x2x1', 4, dict(chip_config_name='megacore', chips_per_host_bounds=(2, 2, 1),
                                   wrap=(False,) * 3)),
    ('v3-32', 'v3:4x4', 32, {}),
    ('v5litepod-8', 'v5e:2x4', 8, dict(chips_per_host_bounds=(2, 4, 1))),
    ('v5e-8', 'v5e:2x4', 8, dict(chips_per_host_bounds=(2, 4, 1))),
    ('v6e-8', 'v6e:2x4', 8, dict(chips_per_host_bounds=(2, 4, 1))),
    ('v4:2x2x1', 'v4:2x2x1', 4, dict(chip_config_name='megacore', chips_per_host_bounds=(2, 2, 1),
                                     wrap=(False,) * 3)),
])
def test_cloud_names_map_to_libtpu_topologies(name, topology, devices, kwargs):
  s = topologies.resolve(name)
  assert (s.topology_name, s.kwargs, s.num_devices) == (topology, kwargs, devices)


def test_libtpu_gives_the_slices_devices_and_hbm():
  """What a rented slice shows JAX: a v4-8 is 4 megacore devices of 30.75 GiB usable HBM."""
  for name, kind, count, hbm_gib in (('v4-8', 'TPU v4', 4, 30.75), ('v3-8', 'TPU v3', 8, 15.48),
                                     ('v5e-8', 'TPU v5 lite', 8, 15.75)):
    _, devices = aot_report.slice_devices(name)
    assert (devices[0].device_kind, len(devices)) == (kind, count)
    assert len({d.process_index for d in devices}) == 1   # one host, as the -8 slices
    assert topologies.hbm_limit(devices[0]) / 2**30 == pytest.approx(hbm_gib, abs=0.01)


def test_bad_topology_name():
  with pytest.raises(topologies.TopologyError, match=r'--topology=v4-6: not a Cloud TPU slice'):
    topologies.resolve('v4-6')


def test_both_oom_messages_parse():
  early = ('RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO '
           'temporaries (48.00G) exceeds available HBM (30.75G).')
  late = ('RESOURCE_EXHAUSTED: E1000: CompileTimeHbmOom: XLA:TPU compile permanent error. Ran out '
          'of memory in memory space hbm. Used 15.76G of 15.75G hbm. Exceeded hbm capacity by 10.02M.')
  assert topologies.parse_oom(early) == (48 * 2**30, 30.75 * 2**30)
  assert topologies.parse_oom(late) == (15.76 * 2**30, 15.75 * 2**30)
  assert topologies.parse_oom('INTERNAL: something else') is None


def test_compile_writes_compile_json(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv('BIGGAN_JAX_CACHE', str(tmp_path / 'cache'))
  assert compile_cli(tmp_path, 'v5e-1') == 0
  report = json.loads((tmp_path / 'compile.json').read_text())
  assert (report['topology'], report['device_kind'], report['devices']) == ('v5e-1', 'TPU v5 lite', 1)
  assert report['fits'] is True and report['cached'] is False
  assert report['hbm_bytes_per_device'] == pytest.approx(15.75 * 2**30)
  assert report['bytes_per_device'] == (report['argument_bytes'] + report['temp_bytes']
                                        + report['output_bytes'] - report['alias_bytes'])
  assert 0 < report['peak_bytes_per_device'] < 2**30 and report['alias_bytes'] > 0  # donated
  # FLOPs: ours (trip counts) near XLA's for a loop-free step; 3 x forward as the model's.
  assert 0.8 < report['flops_per_step'] / report['xla_flops_per_step'] < 1.2
  g, d = report['g_forward_flops_per_image'], report['d_forward_flops_per_image']
  assert report['model_flops_per_step'] == 8 * (1 * (g + 6 * d) + 3 * (g + d))
  roofline = max(report['flops_per_step'] / report['peak_flops_per_device'],
                 report['bytes_accessed_per_device'] / report['hbm_bandwidth_per_device'])
  assert report['estimated_step_seconds'] == pytest.approx(roofline)
  assert report['images_per_second'] == pytest.approx(8 / roofline)
  assert 0 < report['mfu'] <= 1
  assert report['compile_seconds'] > 0 and report['jax'] and report['libtpu']
  out = capsys.readouterr().out
  assert 'fits           True' in out and 'not a measurement' in out
  # The analysis is cached by the lowered program: a second run recompiles nothing.
  assert compile_cli(tmp_path, 'v5e-1') == 0
  again = json.loads((tmp_path / 'compile.json').read_text())
  assert again['cached'] is True and again['peak_bytes_per_device'] == report['peak_bytes_per_device']
  assert again['compiler_options']['exec_time_optimization_effort'] == 0


def test_the_compilers_options_key_the_cache(monkeypatch):
  # A coarse compile's verdict (JAX_EXEC_TIME_OPTIMIZATION_EFFORT=-1) must not answer a default one.
  s = topologies.resolve('v5e-1')
  default = aot_report._cache_path('program', s)
  before = jax.config.jax_exec_time_optimization_effort
  jax.config.update('jax_exec_time_optimization_effort', -1.0)
  try:
    options = aot_report.compiler_options()
    assert aot_report._cache_path('program', s) != default
  finally:
    jax.config.update('jax_exec_time_optimization_effort', before)
  coarse = aot_report.coarse_efforts({'compiler_options': options})
  assert coarse == {'exec_time_optimization_effort': -1.0}
  default_options = dict(options, exec_time_optimization_effort=0.0)
  assert aot_report.coarse_efforts({'compiler_options': default_options}) == {}
  monkeypatch.setenv('LIBTPU_INIT_ARGS', os.environ.get('LIBTPU_INIT_ARGS', '') + ' --xla_tpu_x=1')
  assert aot_report._cache_path('program', s) != default
  monkeypatch.undo()
  assert aot_report._cache_path('program', s) == default


@pytest.fixture(scope='module')
def huge_batch_cache(tmp_path_factory):
  """One analysis cache for the batch-2^21 tests: auto's first compile is the one-pass
  step the first test compiled."""
  return tmp_path_factory.mktemp('huge_batch_cache')


def test_step_that_cannot_fit(tmp_path, monkeypatch, capsys, huge_batch_cache):
  monkeypatch.setenv('BIGGAN_JAX_CACHE', str(huge_batch_cache))
  assert compile_cli(tmp_path, 'v5e-1', '--config.batch_size=2097152') == 2
  line = one_error_line(capsys)
  assert line.startswith('error: v5e-1: the step does not fit: needs ')
  assert '15.75 GiB available; try --config.num_accumulations=' in line
  assert '--config.fsdp=True' not in line   # one device: sharding saves nothing
  report = json.loads((tmp_path / 'compile.json').read_text())
  assert report['fits'] is False and report['bytes_per_device'] > report['hbm_bytes_per_device']


def test_auto_picks_the_fewest_accumulations_that_fit(tmp_path, monkeypatch, capsys,
                                                    huge_batch_cache):
  """The step one pass cannot fit: auto compiles it, jumps to the k its bytes predict and
  confirms that k with the compiler, within three compiles; compile.json holds k."""
  monkeypatch.setenv('BIGGAN_JAX_CACHE', str(huge_batch_cache))
  assert compile_cli(tmp_path, 'v5e-1', '--config.batch_size=2097152',
                     '--config.num_accumulations=auto') == 0
  report = json.loads((tmp_path / 'compile.json').read_text())
  k = report['num_accumulations']
  assert k >= 2 and report['fits'] is True and report['auto']['num_accumulations'] == k
  tried = report['auto']['tried']
  assert 2 <= len(tried) <= 3 and tried[0]['k'] == 1 and not tried[0]['fits']
  assert all(t['fits'] == (t['k'] >= k) for t in tried)
  assert report['peak_bytes_per_device'] <= report['hbm_bytes_per_device']
  line = capsys.readouterr().out.strip().splitlines()[-1]
  largest_failing = max(t['k'] for t in tried if not t['fits'])
  assert line.startswith(f'num_accumulations=auto: {k} (peak ')
  assert f'; {largest_failing} needs ' in line and f'{len(tried)} compiles' in line


def test_batch_must_split_over_the_topology(tmp_path, capsys):
  """validate() counts the slice's devices, not this host's."""
  assert compile_cli(tmp_path, 'v4-8', '--config.batch_size=6') == 2
  assert 'does not split over the 4 devices (the topology)' in one_error_line(capsys)


def test_without_libtpu_one_line(tmp_path, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, 'libtpu', None)
  assert compile_cli(tmp_path, 'v4-8') == 2
  assert one_error_line(capsys) == ('error: --mode=compile needs libtpu, the TPU compiler '
                                    '(no TPU needed): pip install -e ".[tpu]"')
  assert not (tmp_path / 'compile.json').exists()


def test_a_compiler_failure_is_one_line_not_a_verdict():
  """libtpu's own INTERNAL errors (one was met at 128 with fsdp and remat) are no fit verdict."""
  class Lowered:
    def compile(self):
      raise jax.errors.JaxRuntimeError(
          'INTERNAL: RET_CHECK failure (hlo_instruction.cc:3699) ShapeUtil::Compatible...\n'
          '=== Source Location Trace: ===\nlibtpu_init_utils.cc:327')
  with pytest.raises(aot.CompileError) as e:
    aot_report._compile(Lowered())
  message = str(e.value)
  assert message.startswith('libtpu ') and '\n' not in message
  assert 'failed to compile the step, which says nothing about its fit: INTERNAL: RET_CHECK' in message
  assert 'try without one of the levers' in message


def test_an_accumulation_near_the_limit_is_named_beside_the_safe_one():
  """imagenet128 on v4-8 at batch 2048 needs 54.99 GiB (libtpu's figure); 2 accumulations
  are estimated at 93% of the 30.75 GiB (and fit, compiled: docs/tpu.md's table), 4
  within the 90% margin."""
  config = config_lib.from_file(str(REPO / 'configs' / 'imagenet128.py'), num_accumulations=1)
  state = aot_report.state_bytes(sharded_step.abstract_state(sharded_step.build(config)))
  gib = 2**30
  line = aot_report.suggestions(config, {'bytes_per_device': 54.99 * gib, 'state_bytes': state,
                                         'hbm_bytes_per_device': 30.75 * gib, 'devices': 4})
  assert line.startswith('--config.num_accumulations=4 (or 2: estimated at 93% of the HBM, '
                         'check it), --config.fsdp=True')
  # The state alone (2.03 GiB) is over 90% of 2.2 GiB: only the near one is left.
  near = aot_report.suggestions(config, {'bytes_per_device': 54.99 * gib, 'state_bytes': state,
                                         'hbm_bytes_per_device': 2.2 * gib, 'devices': 4})
  assert near.startswith('--config.num_accumulations=512 (estimated at 97% of the HBM, '
                         'check it), --config.fsdp=True')


def test_a_compute_bound_roofline_keeps_mfu_at_most_one(tmp_path, monkeypatch):
  """The 3 x forward rule counts backward passes the step skips, so the MFU of a
  compute-bound roofline takes the jaxpr count: exactly 1, not 1.07 (tiny's ratio)."""
  monkeypatch.setenv('BIGGAN_JAX_CACHE', str(tmp_path / 'cache'))
  monkeypatch.setattr(aot_report, '_compile', lambda lowered: dict(
      fits=True, compile_seconds=0.0, peak_bytes_per_device=1, bytes_per_device=1,
      xla_flops_per_device=1e9, xla_bytes_accessed_per_device=1.0))
  config = config_lib.from_file(str(REPO / 'configs' / 'tiny.py'))
  report = compile_check.analyse(config, 'v5e-1', use_cache=False)
  assert report['bound'] == 'compute'
  assert report['model_flops_per_step'] > report['flops_per_step']
  assert report['mfu'] == pytest.approx(1.0)
