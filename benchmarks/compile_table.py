"""The compiler's verdict on paper configs x Cloud TPU slices: docs/tpu.md's table.

    python benchmarks/compile_table.py configs/imagenet128.py:v4-8:num_accumulations=2 \\
      runs/i128/compile.json ...

Each argument is CONFIG:TOPOLOGY[:key=value,...] (compiled by training/compile_check.py,
what --mode=compile runs, its analysis cached under $BIGGAN_JAX_CACHE/compile/
so a rebuilt table recompiles nothing, though each row is lowered again) or a
compile.json that --mode=compile wrote. Prints one markdown row per argument.
Every time in the table is the compiler's estimate (a roofline), not a
measurement; needs the [tpu] extra (libtpu), no TPU.
"""

import json
import sys

from biggan_jax import config as config_lib
from biggan_jax.aot import report as aot
from biggan_jax.training import compile_check

HEADER = ('| model | batch | acc | dtype | levers | slice | devices | fits | GiB/device | '
          'compile s | GFLOP/step | XLA / jaxpr | jaxpr / model | est. s/step | bound | '
          'est. images/s | est. MFU | libtpu |\n' + '|---' * 18 + '|')


def _value(text: str):
  for parse in (int, float):
    try:
      return parse(text)
    except ValueError:
      pass
  return {'True': True, 'False': False}.get(text, text)


def report_for(arg: str) -> dict:
  if arg.endswith('.json'):
    with open(arg) as f:
      return json.load(f)
  path, topology, *rest = arg.split(':', 2)
  config = config_lib.from_file(path)
  for item in (rest[0].split(',') if rest else []):
    key, value = item.split('=', 1)
    *parents, leaf = key.split('.')
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = _value(value)
  _, devices = aot.slice_devices(topology)
  config_lib.validate(config, len(devices))
  return compile_check.analyse(config, topology, devices)


def row(r: dict) -> str:
  levers = [n for n, on in (('fsdp', r['fsdp']), (f"remat={r['remat']}", r['remat'] != 'none'),
                            ('uint8', r['image_dtype'] == 'uint8')) if on]
  levers += [f'{k.split("_")[0]} effort {v:g}' for k, v in aot.coarse_efforts(r).items()]
  gib = r['peak_bytes_per_device'] if r['fits'] else r['bytes_per_device']
  model = f"{r['family']} {r['resolution']} ch{r['ch']}" if 'family' in r else '?'
  cells = [model, r['batch_size'],
           r['num_accumulations'], r['dtype'], ', '.join(levers) or '-', r['topology'],
           r['devices'], 'yes' if r['fits'] else 'no',
           f"{gib / 2**30:.2f}" + ('' if r['fits'] else ' needed')
           + f" of {r['hbm_bytes_per_device'] / 2**30:.2f}",
           f"{r['compile_seconds']:.0f}", f"{r['flops_per_step'] / 1e9:,.0f}"]
  if r['fits']:
    cells += [f"{r['xla_flops_per_step'] / r['flops_per_step']:.2f}",
              f"{r['flops_to_model_flops']:.2f}", f"{r['estimated_step_seconds']:.2f}",
              r['bound'], f"{r['images_per_second']:,.0f}", f"{r['mfu']:.2f}"]
  else:
    cells += [' ', f"{r['flops_per_step'] / r['model_flops_per_step']:.2f}"] + [' '] * 4
  return '| ' + ' | '.join(str(c) for c in cells + [r['libtpu']]) + ' |'


def main(argv):
  print(HEADER)
  for arg in argv[1:]:
    print(row(report_for(arg)), flush=True)


if __name__ == '__main__':
  main(sys.argv)
