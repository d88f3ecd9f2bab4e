"""num_accumulations='auto': the fewest micro-batches whose train step fits the devices.

The verdict is the compiler's, not a guess from parameter counts. On TPU a
step that does not fit fails to compile with RESOURCE_EXHAUSTED and the bytes
it needs (aot/topologies.parse_oom). On GPU the compiled step's
memory_analysis() (arguments + temporaries + outputs - donated) is held
against the device's memory_stats()['bytes_limit'] with GPU_MARGIN to spare
(the allocator's fragmentation; sampling and evaluation run beside the
step). A backend that reports no limit (XLA:CPU) takes the fewest without
compiling.

The search compiles the fewest candidate first; the bytes it uses or needs
give the linear estimate aot/report.py's suggestions use (the arguments, plus
activations that shrink as 1/k; fitted to two verdicts once there are two),
which names the k to compile next: with room to spare until one fits, then the
fewest that should fit; at most MAX_COMPILES compiles in all. jax keeps the
executables (in memory and in the persistent compilation cache), so the loop
runs the confirmed step without compiling it again. A resumed run on the same
devices starts from the k its checkpoint records, which one compile confirms.
On a pod every host searches and then takes process 0's k, so that all run
one program.
"""

import dataclasses
import time
from typing import Callable

from biggan_jax import config as config_lib
from biggan_jax.aot import topologies
from biggan_jax.errors import TrainingError

MAX_COMPILES = 3
GPU_MARGIN = 0.9  # of memory_stats()['bytes_limit'] (itself XLA's share of the GPU's memory)
JUMP_TARGET = 0.9  # of the limit, for the estimate's jumps until a step fits


class OutOfMemoryError(TrainingError):
  """The step does not fit the devices: the one line with the bytes and the levers."""


@dataclasses.dataclass(frozen=True)
class Verdict:
  k: int
  fits: bool
  bytes: float | None   # per device: what the compiled step uses, or what it would need
  seconds: float        # compiling it


@dataclasses.dataclass(frozen=True)
class Choice:
  k: int | None          # None: nothing fitted within MAX_COMPILES
  verdicts: tuple        # in the order compiled
  limit: float | None    # bytes a step may use per device (margin applied)
  reason: str = ''       # why no compile was needed

  def line(self) -> str:
    """`num_accumulations=auto: 16 (peak 29.95 of 30.75 GiB per device; 8 needs 54.90;
    2 compiles, 95 s)`."""
    if self.reason:
      return f'num_accumulations=auto: {self.k} ({self.reason})'
    gib = lambda b: 'n/a' if b is None else f'{b / 2**30:.2f}'
    parts = []
    chosen = next((v for v in self.verdicts if v.k == self.k), None)
    if chosen is not None:
      parts.append(f'peak {gib(chosen.bytes)} of {gib(self.limit)} GiB per device')
    failed = [v for v in self.verdicts if not v.fits]
    if failed:
      worst = max(failed, key=lambda v: v.k)
      parts.append(f'{worst.k} needs {gib(worst.bytes)}')
    seconds = sum(v.seconds for v in self.verdicts)
    parts.append(f'{len(self.verdicts)} compile{"s" * (len(self.verdicts) > 1)}, {seconds:.0f} s')
    return f'num_accumulations=auto: {self.k} ({"; ".join(parts)})'

  def record(self) -> dict:
    """What compile.json and the checkpoint meta keep of the search."""
    return dict(num_accumulations=self.k, limit_bytes_per_device=self.limit,
                reason=self.reason, tried=[dataclasses.asdict(v) for v in self.verdicts])


def estimate(verdicts, fixed_bytes: float) -> Callable[[int], float] | None:
  """bytes(k) ~ a + b / k, through the two verdicts nearest the answer (the largest k
  that failed and the fewest that fitted; else the two largest), or through one with
  `fixed_bytes` (the arguments: state and batch, which do not shrink with k) as `a`."""
  known = {v.k: v for v in verdicts if v.bytes is not None}
  if not known:
    return None
  failed = [k for k, v in known.items() if not v.fits]
  fitted = [k for k, v in known.items() if v.fits]
  pair = ([max(failed), min(fitted)] if failed and fitted else sorted(known)[-2:])
  if len(pair) == 2:
    (k1, b1), (k2, b2) = [(k, known[k].bytes) for k in pair]
    slope = (b1 - b2) / (1 / k1 - 1 / k2)
    if slope > 0:
      return lambda k: b1 + slope * (1 / k - 1 / k1)
  k1, b1 = pair[-1], known[pair[-1]].bytes
  activations = max(b1 - fixed_bytes, 1.0) * k1
  return lambda k: fixed_bytes + activations / k


def search(candidates: list[int], verdict: Callable[[int], Verdict], *, limit: float,
           fixed_bytes: float, start: int | None = None,
           max_compiles: int = MAX_COMPILES) -> Choice:
  """The fewest of `candidates` (ascending) that `verdict` (one compile each) says fits.

  Starts at `start` (a resumed run's k) or the fewest; a start that fits ends the
  search. Until a step fits, it jumps to the fewest k estimated within JUMP_TARGET of
  `limit` (the estimate errs: a step that fits is worth a larger k); once one fits,
  it tries the fewest smaller k estimated within `limit` itself.
  """
  verdicts = []
  k = start if start in candidates else candidates[0]
  while k is not None and len(verdicts) < max_compiles:
    verdicts.append(verdict(k))
    if verdicts[-1].fits and (k == start or k == candidates[0]):
      break
    failed = max((v.k for v in verdicts if not v.fits), default=0)
    fitted = min((v.k for v in verdicts if v.fits), default=None)
    between = [c for c in candidates if c > failed and (fitted is None or c < fitted)]
    if not between:
      break
    bytes_at = estimate(verdicts, fixed_bytes)
    if bytes_at is None:  # no bytes to go on (an OOM that says none): double
      k = None if fitted else next((c for c in between if c >= 2 * failed), between[-1])
      continue
    targets = (limit,) if fitted else (JUMP_TARGET * limit, limit)
    k = next((c for t in targets for c in between if bytes_at(c) <= t), None)
    if k is None and fitted is None:
      k = between[-1]  # none is estimated to fit: the smallest step confirms it
  fitted = [v.k for v in verdicts if v.fits]
  return Choice(min(fitted) if fitted else None, tuple(verdicts), limit)


# ---------------------------------------------------------------------------
# The train path: the devices the run has.
# ---------------------------------------------------------------------------

def device_limit(device) -> float | None:
  """Bytes a program may use on `device`, from its allocator; None where it reports
  none (XLA:CPU). Tests replace this to simulate a device's limit."""
  stats = device.memory_stats()
  return float(stats['bytes_limit']) if stats and stats.get('bytes_limit') else None


def margin(device) -> float:
  """The TPU compiler refuses a step that does not fit; elsewhere the margin is ours."""
  return 1.0 if device.platform == 'tpu' else GPU_MARGIN


def is_out_of_memory(error: BaseException) -> bool:
  text = str(error)
  return 'RESOURCE_EXHAUSTED' in text or 'Out of memory' in text or 'out of memory' in text


def memory_signature(config, devices) -> dict:
  """What a resumed run must share with the one that chose k to reuse it."""
  return dict(devices=len(devices), device_kind=devices[0].device_kind,
              batch_size=config.batch_size, num_d_steps=config.num_d_steps,
              fsdp=bool(config.fsdp), dtype=config.model.dtype, remat=config.model.remat)


def argument_bytes(config, devices) -> float:
  """Per device: the state (divided over the devices with FSDP) and the batch, which
  stay whatever k is."""
  from biggan_jax.aot import report as report_lib
  from biggan_jax.training import sharded_step
  kc = config_lib.with_accumulations(config, 1)
  train = sharded_step.build(kc, devices)
  state = report_lib.state_bytes(sharded_step.abstract_state(train))
  batch = report_lib.state_bytes(sharded_step.abstract_batch(kc, train))
  return (state / (len(devices) if config.fsdp else 1)) + batch / len(devices)


def used_bytes(compiled) -> float:
  """Per device: arguments + temporaries + outputs - donated (aot/report.py's bytes_per_device)."""
  ma = compiled.memory_analysis()
  return float(ma.argument_size_in_bytes + ma.temp_size_in_bytes + ma.output_size_in_bytes
               - ma.alias_size_in_bytes)


def build(config, devices=None, previous: dict | None = None):
  """(config with num_accumulations an integer, its sharded_step.TrainStep, the
  search's record or None). `previous`: the checkpoint meta's record of the run
  being resumed. Raises OutOfMemoryError when no k fits."""
  import jax
  from biggan_jax.training import sharded_step
  if config.num_accumulations != config_lib.AUTO:
    return config, sharded_step.build(config, devices), None
  devices = list(devices if devices is not None else jax.devices())
  candidates = config_lib.accumulation_candidates(config, len(devices))
  local = next(d for d in devices if d.process_index == jax.process_index())
  limit = device_limit(local)  # another host's device reports no memory here
  signature = memory_signature(config, devices)
  steps = {}

  def verdict(k: int) -> Verdict:
    kc = config_lib.with_accumulations(config, k)
    train = steps[k] = sharded_step.build(kc, devices)
    start = time.perf_counter()
    try:
      compiled = train.step.lower(sharded_step.abstract_state(train),
                                  sharded_step.abstract_batch(kc, train)).compile()
    except jax.errors.JaxRuntimeError as e:
      if not is_out_of_memory(e):
        raise
      parsed = topologies.parse_oom(str(e))
      return Verdict(k, False, parsed[0] if parsed else None, time.perf_counter() - start)
    used = used_bytes(compiled)
    return Verdict(k, used <= limit * margin(local), used, time.perf_counter() - start)

  if limit is None:
    choice = Choice(candidates[0], (), None, f'{local.platform} reports no device memory limit')
  else:
    reuse = (previous or {}).get('num_accumulations')
    if previous and previous.get('signature') != signature:
      reuse = None  # other devices or another program: choose again
    choice = search(candidates, verdict, limit=limit * margin(local),
                    fixed_bytes=argument_bytes(config, devices), start=reuse)
    if reuse is not None and choice.k == reuse:
      choice = dataclasses.replace(choice, reason=(
          f'as the checkpoint records for these devices; '
          f'{_gib_of(choice.verdicts[0].bytes, choice.limit)}'))
  if jax.process_count() > 1:  # one program over the pod: every host takes process 0's k
    from jax.experimental import multihost_utils
    import numpy as np
    k0 = int(multihost_utils.broadcast_one_to_all(np.int32(choice.k or 0)))
    choice = dataclasses.replace(choice, k=k0 or None)
  if choice.k is None:
    raise OutOfMemoryError(not_fitting(config, choice, devices))
  kc = config_lib.with_accumulations(config, choice.k)
  train = steps.get(choice.k) or sharded_step.build(kc, devices)
  return kc, train, dict(choice.record(), signature=signature, line=choice.line())


def _gib_of(used, limit) -> str:
  return f'peak {used / 2**30:.2f} of {limit / 2**30:.2f} GiB per device'


def not_fitting(config, choice: Choice, devices) -> str:
  """The one line when no k fits: the fewest that failed, their bytes, the other levers."""
  tried = ', '.join(f'{v.k} needs {"n/a" if v.bytes is None else f"{v.bytes / 2**30:.2f} GiB"}'
                    for v in choice.verdicts)
  return (f'num_accumulations=auto: no step fits {len(devices)} x {devices[0].device_kind} '
          f'({choice.limit / 2**30:.2f} GiB per device usable; tried {tried}); try '
          + levers(config, len(devices), with_auto=False))


def levers(config, num_devices: int, *, with_auto: bool = True) -> str:
  """What makes a step smaller, as flags (aot/report.py's memory_levers, after auto)."""
  from biggan_jax.aot import report as report_lib
  out = ['--config.num_accumulations=auto (or a larger num_accumulations)'] if with_auto else []
  out += report_lib.memory_levers(config, num_devices)
  return ', '.join(out) if out else 'more devices'
