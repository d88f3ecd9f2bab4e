"""--mode=compile: does a config's train step fit a Cloud TPU slice, and how fast would it run?

    python -m biggan_jax.main --config=configs/imagenet128.py --workdir=DIR \\
      --mode=compile --topology=v4-8

The step is the one training runs (training/sharded_step.py: same mesh,
state layout, shardings, donation), built for the slice's compile-only
devices and compiled by libtpu (aot/report.py says what is measured and
what is estimated); neither TensorFlow nor the dataset is touched.
"""

import os

from biggan_jax import config as config_lib
from biggan_jax.aot import CompileError, report as report_lib
from biggan_jax.aot import topologies
from biggan_jax.training import auto_accumulation, sharded_step


def analyse(config, name: str, devices=None, *, use_cache: bool = True) -> dict:
  """compile.json's contents for `config` on the slice `name` (aot/report.py's `analyse`);
  with num_accumulations='auto', those of the k the search chose (its record under
  'auto'), or of the last k tried when none fits."""
  s = topologies.resolve(name)
  if devices is None:
    s, devices = report_lib.slice_devices(name)

  def report_for(k_config):
    train = sharded_step.build(k_config, devices)
    state, batch = sharded_step.abstract_state(train), sharded_step.abstract_batch(k_config, train)
    return report_lib.analyse(k_config, s, devices, train, state, batch, use_cache=use_cache)

  if config.num_accumulations != config_lib.AUTO:
    return report_for(config)
  reports = {}

  def verdict(k):
    r = reports[k] = report_for(config_lib.with_accumulations(config, k))
    seconds = 0.0 if r['cached'] else r['compile_seconds']
    return auto_accumulation.Verdict(k, r['fits'], r['bytes_per_device'], seconds)

  candidates = config_lib.accumulation_candidates(config, len(devices))
  choice = auto_accumulation.search(candidates, verdict, limit=topologies.hbm_limit(devices[0]),
                                    fixed_bytes=auto_accumulation.argument_bytes(config, devices))
  report = dict(reports[choice.k if choice.k is not None else choice.verdicts[-1].k])
  report['auto'] = dict(choice.record(), line=choice.line() if choice.k else None)
  return report


def run(config, workdir: str, name: str, devices=None) -> dict:
  """Compiles, prints the table, writes WORKDIR/compile.json; raises CompileError
  (after writing it) when the step does not fit."""
  from biggan_jax.utils import files
  report = analyse(config, name, devices)
  path = os.path.join(workdir, 'compile.json')
  files.write_json(path, report)
  print(report_lib.table(report), flush=True)
  if report.get('auto', {}).get('line'):
    print(report['auto']['line'], flush=True)
  if not report['fits']:
    tried = config_lib.with_accumulations(config, report['num_accumulations'])
    raise CompileError(report_lib.not_fitting_message(tried, report, path))
  return report
