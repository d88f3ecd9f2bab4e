"""A train step compiled ahead of time for a Cloud TPU slice's devices, on any host.

libtpu (`pip install -e ".[tpu]"`) compiles for a slice's devices without
the slice. The compiler's memory_analysis() decides whether the step fits
(peak_memory_in_bytes against the HBM a program may use, read from the
compiler itself); the time is a roofline estimate, not a measurement:
max(FLOPs / peak FLOP/s, bytes accessed / HBM bandwidth) per device, with
FLOPs counted from the jaxpr at loop trip counts (aot/flops.py) and the
chips' published peaks (aot/topologies.py). XLA's cost_analysis() counts a
loop body once and its optimal_seconds can be negative, so neither is used
for the time; XLA's FLOP count is reported beside ours.

JAX's persistent compilation cache cannot read back a compile-only TPU
executable, so the analysis (not the executable) is cached under
$BIGGAN_JAX_CACHE/compile/, keyed by the lowered program, the slice, the
libtpu version and the compiler's options: rebuilding docs/tpu.md's
table recompiles nothing.

JAX_EXEC_TIME_OPTIMIZATION_EFFORT=-1 makes a quicker, coarser compile (faster,
with a higher peak: docs/tpu.md compares it with the default); the
report records the efforts, and such a verdict is not the one training gets.
"""

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import time

from biggan_jax.aot import CompileError, flops, topologies

INSTALL = 'pip install -e ".[tpu]"'


def slice_devices(name: str):
  """(Slice, its compile-only devices); one-line errors for a bad name or no libtpu."""
  s = topologies.resolve(name)
  if importlib.util.find_spec('libtpu') is None:
    raise CompileError(f'--mode=compile needs libtpu, the TPU compiler (no TPU needed): {INSTALL}')
  # The host backend stays CPU; libtpu then asks no metadata server for a slice
  # and does not print its "could not determine TPU accelerator type" warnings;
  # a second process may load libtpu beside a first (else /tmp/libtpu_lockfile).
  for key, value in (('JAX_PLATFORMS', 'cpu'), ('TPU_SKIP_MDS_QUERY', '1'),
                     ('TPU_ACCELERATOR_TYPE', s.cloud_name), ('TPU_WORKER_HOSTNAMES', 'localhost'),
                     ('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')):
    os.environ.setdefault(key, value)
  return s, topologies.devices(s)


@contextlib.contextmanager
def _tpu_convolutions():
  """The step as a TPU traces it: models/conv_gradfix.py's XLA:CPU workaround off."""
  from biggan_jax.models import conv_gradfix
  before, conv_gradfix.ENABLED = conv_gradfix.ENABLED, False
  try:
    yield
  finally:
    conv_gradfix.ENABLED = before


def model_flops(config, train, state) -> tuple[int, int, int]:
  """(FLOPs of one iteration, G forward and D forward FLOPs per image).

  The iteration by the usual 3 x forward rule (forward + backward): per image
  of the batch, num_d_steps x (G + 3 x D on a fake and a real) + 3 x (G + D).
  This is what MFU divides by; work beyond it (regularisers, remat's
  recomputation, SV tracking) is not in it.
  """
  import jax
  import jax.numpy as jnp
  m = config.model
  z = jax.ShapeDtypeStruct((1, m.dim_z), jnp.float32)
  y = jax.ShapeDtypeStruct((1,), jnp.int32)
  x = jax.ShapeDtypeStruct((1, m.resolution, m.resolution, 3), jnp.float32)
  g_vars = {'params': state.g_params, **state.g_state}
  d_vars = {'params': state.d_params, **state.d_state}
  g, _ = flops.count(lambda v, z, y: train.generator.apply(v, z, y, train=False), g_vars, z, y)
  d, _ = flops.count(lambda v, x, y: train.discriminator.apply(v, x, y, train=False), d_vars, x, y)
  return config.batch_size * (config.num_d_steps * (g + 6 * d) + 3 * (g + d)), g, d


def _libtpu_version():
  try:
    return importlib.metadata.version('libtpu')
  except importlib.metadata.PackageNotFoundError:
    return None


def compiler_options() -> dict:
  """What besides the program changes the compiler's verdict: JAX's effort knobs, flags."""
  import jax
  return dict(exec_time_optimization_effort=jax.config.jax_exec_time_optimization_effort,
              memory_fitting_effort=jax.config.jax_memory_fitting_effort,
              LIBTPU_INIT_ARGS=os.environ.get('LIBTPU_INIT_ARGS', ''),
              XLA_FLAGS=os.environ.get('XLA_FLAGS', ''))


def coarse_efforts(report) -> dict:
  """The effort knobs a report was compiled with that are not training's default (0)."""
  return {k: v for k, v in report.get('compiler_options', {}).items() if k.endswith('effort') and v}


def _cache_path(lowered_text: str, s) -> str:
  from biggan_jax.utils import download
  key = hashlib.sha256('\n'.join([lowered_text, s.topology_name, json.dumps(s.kwargs),
                                  str(_libtpu_version()),
                                  json.dumps(compiler_options(), sort_keys=True)]
                                 ).encode()).hexdigest()[:32]
  return os.path.join(download.cache_dir(), 'compile', f'{key}.json')


def _compile(lowered) -> dict:
  """The compiler's verdict and analysis: memory fields, XLA's cost, seconds."""
  import jax
  start = time.perf_counter()
  try:
    compiled = lowered.compile()
  except jax.errors.JaxRuntimeError as e:
    parsed = topologies.parse_oom(str(e))
    message = ' '.join(str(e).split())
    if parsed is None and 'RESOURCE_EXHAUSTED' not in message:
      # Not a fit verdict: the compiler itself failed (seen: an INTERNAL RET_CHECK in
      # libtpu 0.0.42.1's all-reduce-scatter fusion with fsdp, remat and bfloat16 at 128).
      raise CompileError(f'libtpu {_libtpu_version()} failed to compile the step, which says '
                         f'nothing about its fit: {message[:300]}...; try without one of the '
                         'levers (fsdp, model.remat, model.dtype) or another libtpu') from None
    return dict(fits=False, compile_seconds=time.perf_counter() - start,
                bytes_per_device=parsed[0] if parsed else None,
                compiler_message=message[:500])
  seconds = time.perf_counter() - start
  ma = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}
  out = dict(fits=True, compile_seconds=seconds,
             argument_bytes=ma.argument_size_in_bytes, output_bytes=ma.output_size_in_bytes,
             alias_bytes=ma.alias_size_in_bytes, temp_bytes=ma.temp_size_in_bytes,
             generated_code_bytes=ma.generated_code_size_in_bytes,
             peak_bytes_per_device=ma.peak_memory_in_bytes,
             xla_flops_per_device=cost.get('flops'),
             xla_bytes_accessed_per_device=cost.get('bytes accessed'))
  out['bytes_per_device'] = (out['argument_bytes'] + out['temp_bytes'] + out['output_bytes']
                             - out['alias_bytes'])
  return out


def analyse(config, s, devices, train, state, batch, *, use_cache: bool = True) -> dict:
  """compile.json's contents for `config`'s step on the slice `s` (topologies.Slice) with its
  compile-only `devices`. `train` is the step as training builds it
  (training/sharded_step.py's TrainStep: `step`, `generator`, `discriminator`), `state`
  and `batch` its abstract arguments."""
  import jax
  n = len(devices)
  with _tpu_convolutions():
    start = time.perf_counter()
    traced = train.step.trace(state, batch)
    lowered = traced.lower()
    lower_seconds = time.perf_counter() - start
    notes = []
    step_flops = flops.jaxpr_flops(traced.jaxpr, notes)
    model, g_fwd, d_fwd = model_flops(config, train, state)
  limit = topologies.hbm_limit(devices[0])
  cache = _cache_path(lowered.as_text(), s)
  if use_cache and os.path.exists(cache):
    with open(cache) as f:
      result = dict(json.load(f), cached=True)
  else:
    result = dict(_compile(lowered), cached=False)
    if use_cache:
      from biggan_jax.utils import files
      files.write_json(cache, result)
  chip = s.chip
  peak = chip.bf16_flops / chip.devices
  bandwidth = chip.hbm_bandwidth / chip.devices
  report = dict(
      topology=s.name, libtpu_topology=s.topology_name, libtpu_kwargs=s.kwargs,
      device_kind=devices[0].device_kind, devices=n, chips=s.chips,
      hbm_bytes_per_device=limit, **result,
      flops_per_step=step_flops, model_flops_per_step=model, state_bytes=state_bytes(state),
      g_forward_flops_per_image=g_fwd, d_forward_flops_per_image=d_fwd,
      peak_flops_per_device=peak, hbm_bandwidth_per_device=bandwidth, chip_source=chip.source,
      lower_seconds=lower_seconds, flop_notes=sorted(set(notes)),
      family=config.model.family, resolution=config.model.resolution, ch=config.model.ch,
      batch_size=config.batch_size, num_accumulations=config.num_accumulations,
      num_d_steps=config.num_d_steps, dtype=config.model.dtype, fsdp=config.fsdp,
      remat=config.model.remat, image_dtype=config.dataset.image_dtype,
      compiler_options=compiler_options(), jax=jax.__version__, libtpu=_libtpu_version())
  if result['fits']:
    xla_flops = result['xla_flops_per_device'] * n
    # XLA counts each loop body once, its bytes too: scale them as its FLOPs fall short.
    bytes_accessed = result['xla_bytes_accessed_per_device'] * max(1.0, step_flops / xla_flops)
    compute_s, memory_s = step_flops / n / peak, bytes_accessed / bandwidth
    step_s = max(compute_s, memory_s)
    # MFU's FLOPs: the fewer of the 3 x forward rule, which counts backward passes the step
    # skips (~6% at 128), and the jaxpr count, which counts remat's recomputation; so <= 1.
    useful = min(model, step_flops)
    report.update(
        xla_flops_per_step=xla_flops, xla_to_model_flops=xla_flops / model,
        flops_to_model_flops=step_flops / model, bytes_accessed_per_device=bytes_accessed,
        headroom_bytes_per_device=limit - result['peak_bytes_per_device'],
        estimated_step_seconds=step_s, bound='compute' if compute_s >= memory_s else 'memory',
        images_per_second=config.batch_size * config.num_d_steps / step_s,
        mfu=useful / step_s / (peak * n))
  return report


def suggestions(config, report, auto_tried: bool = False) -> str:
  """Overrides that should fit, from the bytes the compiler asked for.

  Activations scale with the micro-batch and the state does not, so the
  smallest num_accumulations is estimated as state + activations x acc / acc';
  FSDP divides the state by the device count; remat cuts the activations
  kept by residual blocks. Estimates: check them with --mode=compile. One
  estimated within 90-100% of the HBM is named too (imagenet128 on v4-8: 2 is
  estimated in that band and fits, the 90% margin alone would say 4; the
  estimate and the compiled peak are in docs/tpu.md).
  """
  need, limit, n = report['bytes_per_device'], report['hbm_bytes_per_device'], report['devices']
  levers = []
  if need is not None:
    state = report['state_bytes'] / (n if config.fsdp else 1)
    acc = config.num_accumulations
    activations = max(need - state, 1.0)
    tight = None
    for k in range(acc + 1, config.batch_size // n + 1):
      estimate = state + activations * acc / k
      if config.batch_size % (k * n) or estimate > limit:
        continue
      if estimate <= 0.9 * limit:
        levers.append(f'--config.num_accumulations={k}' + (
            f' (or {tight[0]}: estimated at {tight[1]:.0%} of the HBM, check it)' if tight else ''))
        break
      tight = tight or (k, estimate / limit)
    else:
      if tight:
        levers.append(f'--config.num_accumulations={tight[0]} (estimated at {tight[1]:.0%} '
                      'of the HBM, check it)')
  levers += memory_levers(config, n)
  if levers and not auto_tried:
    levers.append('or --config.num_accumulations=auto (the run compiles to choose)')
  return ', '.join(levers) if levers else 'a larger slice'


def memory_levers(config, num_devices: int) -> list[str]:
  """The overrides besides num_accumulations that make a step smaller, as flags."""
  levers = []
  if not config.fsdp and num_devices > 1:
    levers.append('--config.fsdp=True')
  if config.model.remat == 'none':
    levers.append('--config.model.remat=nothing_saveable')
  if config.model.dtype != 'bfloat16':
    levers.append('--config.model.dtype=bfloat16')
  return levers


def state_bytes(state) -> float:
  """Bytes of the whole train state (abstract or not), unsharded."""
  import jax
  import numpy as np
  return float(sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(state)))


def _gib(n) -> str:
  return 'n/a' if n is None else f'{n / 2**30:.2f} GiB'


def table(report) -> str:
  """The printed summary: what compile.json holds, in a reader's units."""
  r = report
  rows = [('topology', f"{r['topology']} ({r['libtpu_topology']}): {r['devices']} x "
                       f"{r['device_kind']}, {_gib(r['hbm_bytes_per_device'])} each"),
          ('fits', str(r['fits'])),
          ('bytes/device', f"{_gib(r['bytes_per_device'])} " + (
              '(arguments + temporaries + outputs - aliased)' if r['fits']
              else "(needed, from the compiler's RESOURCE_EXHAUSTED)"))]
  if r['fits']:
    rows += [('peak/device', f"{_gib(r['peak_bytes_per_device'])} (headroom "
                             f"{_gib(r['headroom_bytes_per_device'])})"),
             ('arguments', _gib(r['argument_bytes'])), ('temporaries', _gib(r['temp_bytes'])),
             ('GFLOP/step', f"{r['flops_per_step'] / 1e9:.4g} (jaxpr, loops x trip count); "
                            f"XLA {r['xla_flops_per_step'] / 1e9:.4g}; model (3 x forward) "
                            f"{r['model_flops_per_step'] / 1e9:.4g}"),
             ('est. step', f"{r['estimated_step_seconds']:.3f} s ({r['bound']}-bound roofline, "
                           'the compiler\'s estimate, not a measurement)'),
             ('est. images/s', f"{r['images_per_second']:,.0f}"),
             ('est. MFU', f"{r['mfu']:.2f}")]
  rows.append(('compile', f"{r['compile_seconds']:.0f} s" + (' (cached)' if r['cached'] else '')))
  coarse = coarse_efforts(r)
  if coarse:
    rows.append(('compiler', ', '.join(f'{k}={v:g}' for k, v in coarse.items())
                 + ' (not the default effort training compiles with)'))
  width = max(len(k) for k, _ in rows)
  return '\n'.join(f'{k:<{width}}  {v}' for k, v in rows)


def not_fitting_message(config, report, written_to: str) -> str:
  """The one line for a step that does not fit: needed vs available, the levers
  (`report['auto']`: num_accumulations=auto's search, which chose none)."""
  need = report['bytes_per_device']
  needs = (f"needs {_gib(need)} per device, {_gib(report['hbm_bytes_per_device'])} available"
           if need is not None else report['compiler_message'])
  if 'auto' in report:
    tried = ', '.join(str(t['k']) for t in report['auto']['tried'])
    needs = (f"num_accumulations=auto compiled {tried} and none fits; at "
             f"{report['num_accumulations']} it {needs}")
  return (f"{report['topology']}: the step does not fit: {needs}; try "
          f"{suggestions(config, report, 'auto' in report)} (written to {written_to})")
