"""Cloud TPU slices as libtpu's compiler sees them, and the chips' published peaks.

libtpu compiles for any topology on a CPU-only host
(jax.experimental.topologies.get_topology_desc; MaxText's train_compile.py
does the same for LLMs), but it only takes names like 'v4:2x2x1', and its
defaults are not what a rented slice gives JAX: v4 defaults to one device per
TensorCore (a v4-8 slice runs megacore: 4 devices of 32 GiB), and an 8-chip
v5e/v6e to two hosts of 4 chips. `resolve` maps the names users rent
(v3-8 ... v3-2048, v4-8 ... v4-4096, v5p-8 ..., v5litepod-8 / v5e-8, v6e-8
...) and libtpu's form to the topology name and keyword arguments that
reproduce the slice (MaxText's accelerator_to_spec_map.py has the same for
v4, v5e and v5p).
"""

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
from jax.sharding import SingleDeviceSharding


class TopologyError(ValueError):
  """A topology name that names no Cloud TPU slice; one line for the user."""


@dataclasses.dataclass(frozen=True)
class Chip:
  """Published per-chip figures; `devices` JAX devices per chip."""
  generation: str
  bf16_flops: float       # peak dense bf16 FLOP/s
  hbm_bandwidth: float    # bytes/s
  devices: int
  source: str


CHIPS = {
    'v3': Chip('v3', 123e12, 900e9, 2, 'https://cloud.google.com/tpu/docs/v3'),
    'v4': Chip('v4', 275e12, 1200e9, 1, 'https://cloud.google.com/tpu/docs/v4'),
    'v5e': Chip('v5e', 197e12, 819e9, 1, 'https://cloud.google.com/tpu/docs/v5e'),
    'v5p': Chip('v5p', 459e12, 2765e9, 1, 'https://cloud.google.com/tpu/docs/v5p'),
    'v6e': Chip('v6e', 918e12, 1640e9, 1, 'https://cloud.google.com/tpu/docs/v6e'),
}

# Cloud name prefix -> generation, and whether the number after '-' counts
# TensorCores (2 per chip: v3, v4, v5p) or chips (v5e, v6e).
_CLOUD = {'v3': ('v3', 2), 'v4': ('v4', 2), 'v5p': ('v5p', 2), 'v5litepod': ('v5e', 1),
          'v5e': ('v5e', 1), 'v6e': ('v6e', 1)}
_LIBTPU_GEN = {'v3': 'v3', 'v4': 'v4', 'v5p': 'v5p', 'v5': 'v5p', 'v5e': 'v5e', 'v6e': 'v6e'}
EXAMPLES = 'v3-8, v3-32, v4-8, v4-32, v5p-8, v5litepod-8 (= v5e-8), v6e-8 or v4:2x2x1'


@dataclasses.dataclass(frozen=True)
class Slice:
  name: str                # as the user typed it
  chip: Chip
  dims: tuple[int, ...]    # chips along each axis
  topology_name: str       # libtpu's, e.g. 'v4:2x2x1'
  kwargs: dict             # for get_topology_desc

  @property
  def chips(self) -> int:
    return math.prod(self.dims)

  @property
  def num_devices(self) -> int:
    return self.chips * self.chip.devices

  @property
  def cloud_name(self) -> str:
    """'v4-8', 'v5litepod-8': TensorCores after the dash for v3, v4, v5p; chips for v5e, v6e."""
    prefix = {'v5e': 'v5litepod'}.get(self.chip.generation, self.chip.generation)
    cores = 2 if self.chip.generation in ('v3', 'v4', 'v5p') else 1
    return f'{prefix}-{self.chips * cores}'


def _dims(gen: str, chips: int) -> tuple[int, ...]:
  """Chip grid of a slice: v3/v5e/v6e are 2-D tori, v4/v5p 3-D (2x2x1, 2x2x2, 2x2x4, ...)."""
  n = round(math.log2(chips)) if chips >= 1 else -1
  if chips < 1 or 2**n != chips:
    raise ValueError(chips)
  if gen in ('v4', 'v5p'):
    if chips < 4:
      raise ValueError(chips)
    dims = [2, 2, 1]
    for _ in range(n - 2):  # double the last of the smallest axes: 2x2x2, 2x2x4, 2x4x4, 4x4x4
      axis = min(range(3), key=lambda a: (dims[a], -a))
      dims[axis] *= 2
    return tuple(dims)
  a = 2 ** (n // 2)
  return (a, chips // a)


def _kwargs(gen: str, dims: tuple[int, ...]) -> dict:
  chips = math.prod(dims)
  if gen in ('v4', 'v5p'):  # megacore: one JAX device per chip, as on the rented slice.
    return dict(chip_config_name='megacore',
                chips_per_host_bounds=tuple(min(d, h) for d, h in zip(dims, (2, 2, 1))),
                wrap=(all(d >= 4 for d in dims),) * 3)
  if gen in ('v5e', 'v6e'):  # 1, 4 or 8 chips are one host; larger slices, hosts of 4.
    return dict(chips_per_host_bounds={1: (1, 1, 1), 2: (1, 2, 1), 8: (2, 4, 1)}.get(
        chips, (2, 2, 1)))
  return {}


def resolve(name: str) -> Slice:
  """The slice a Cloud TPU name ('v4-8') or libtpu topology ('v4:2x2x1') describes."""
  m = re.fullmatch(r'(v3|v4|v5p|v5litepod|v5e|v6e)-(\d+)', name)
  libtpu = re.fullmatch(r'(v3|v4|v5p|v5|v5e|v6e)[:=_](\d+(?:x\d+){1,2})', name)
  try:
    if m:
      gen, per_chip = _CLOUD[m.group(1)]
      count = int(m.group(2))
      if count % per_chip:
        raise ValueError(count)
      dims = _dims(gen, count // per_chip)
    elif libtpu:
      gen = _LIBTPU_GEN[libtpu.group(1)]
      dims = tuple(int(d) for d in libtpu.group(2).split('x'))
      if gen in ('v4', 'v5p') and len(dims) != 3 or gen not in ('v4', 'v5p') and len(dims) != 2:
        raise ValueError(dims)
    else:
      raise ValueError(name)
  except ValueError:
    raise TopologyError(f'--topology={name}: not a Cloud TPU slice; use e.g. {EXAMPLES}') from None
  topology_name = f'{gen}:{"x".join(map(str, dims))}'
  return Slice(name, CHIPS[gen], dims, topology_name, _kwargs(gen, dims))


def devices(s: Slice):
  """The slice's compile-only TPU devices (libtpu must be installed)."""
  from jax.experimental import topologies
  return topologies.get_topology_desc(platform='tpu', topology_name=s.topology_name,
                                      **s.kwargs).devices


# libtpu's two RESOURCE_EXHAUSTED texts: from buffer assignment, and (CompileTimeHbmOom)
# from the end of compilation, where arguments count too.
_OOM = (re.compile(r'required for HLO temporaries \(([\d.]+)([KMGT]?)\) exceeds '
                   r'available HBM \(([\d.]+)([KMGT]?)\)'),
        re.compile(r'Used ([\d.]+)([KMGT]?) of ([\d.]+)([KMGT]?) hbm'))
_UNIT = {'': 1, 'K': 2**10, 'M': 2**20, 'G': 2**30, 'T': 2**40}


def parse_oom(message: str) -> tuple[float, float] | None:
  """(bytes needed, bytes available per device) from libtpu's RESOURCE_EXHAUSTED text;
  its units are binary ('30.75G' is 30.75 GiB)."""
  for pattern in _OOM:
    m = pattern.search(message)
    if m:
      return float(m.group(1)) * _UNIT[m.group(2)], float(m.group(3)) * _UNIT[m.group(4)]
  return None


def hbm_limit(device) -> float:
  """Bytes one program may use on `device`, as the compiler counts them.

  No API reports it for compile-only devices (memory_stats() needs an
  addressable device), so a program that cannot fit (a 1 TiB output) is
  compiled and the limit read from the error; that fails in well under a second.
  """
  f = jax.jit(lambda: jnp.zeros((2**40,), jnp.int8), out_shardings=SingleDeviceSharding(device))
  try:
    f.lower().compile()
  except jax.errors.JaxRuntimeError as e:
    parsed = parse_oom(str(e))
    if parsed:
      return parsed[1]
    raise
  raise RuntimeError(f'a 1 TiB program compiled for {device.device_kind}')
