"""--mode=compile: does a config's train step fit a Cloud TPU slice, and how fast would it run?

    python -m biggan_jax.main --config=configs/imagenet128.py --workdir=DIR \\
      --mode=compile --topology=v4-8

The step is the one training runs (training/sharded_step.py: same mesh,
state layout, shardings, donation), built for the slice's compile-only
devices and compiled by libtpu (aot/report.py says what is measured and
what is estimated); neither TensorFlow nor the dataset is touched.
"""

import os

from biggan_jax.aot import CompileError, report as report_lib
from biggan_jax.aot import topologies
from biggan_jax.training import sharded_step


def analyse(config, name: str, devices=None, *, use_cache: bool = True) -> dict:
  """compile.json's contents for `config` on the slice `name` (aot/report.py's `analyse`)."""
  s = topologies.resolve(name)
  if devices is None:
    s, devices = report_lib.slice_devices(name)
  train = sharded_step.build(config, devices)
  state, batch = sharded_step.abstract_state(train), sharded_step.abstract_batch(config, train)
  return report_lib.analyse(config, s, devices, train, state, batch, use_cache=use_cache)


def run(config, workdir: str, name: str, devices=None) -> dict:
  """Compiles, prints the table, writes WORKDIR/compile.json; raises CompileError
  (after writing it) when the step does not fit."""
  from biggan_jax.utils import files
  report = analyse(config, name, devices)
  path = os.path.join(workdir, 'compile.json')
  files.write_json(path, report)
  print(report_lib.table(report), flush=True)
  if not report['fits']:
    raise CompileError(report_lib.not_fitting_message(config, report, path))
  return report
