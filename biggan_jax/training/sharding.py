"""The device mesh and how arrays are laid out on it.

One 'data' axis over every device of every host: the batch is split over it.
Parameters, Adam states and the EMA G are replicated, or with
`config.fsdp` sharded over the same axis (ZeRO / FSDP: `ParamLayout`).
"""

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

# Leaves smaller than this stay replicated under FSDP: sharding them saves
# little memory and costs a collective each (biases, BN gains, Adam's count).
FSDP_MIN_SIZE = 2**14


def make_mesh(devices=None) -> Mesh:
  """A 1-D 'data' mesh over `devices` (default: all devices of all hosts)."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int) -> NamedSharding:
  """Arrays whose axis `batch_axis` is the (global) batch."""
  return NamedSharding(mesh, P(*([None] * batch_axis), 'data'))


def fsdp_spec(shape, num_devices: int) -> P:
  """Shards the largest axis that `num_devices` divides (of equal ones the last: a kernel's
  output features); small or indivisible leaves stay replicated (big_vision's 'fsdp'
  rule, sharding.py)."""
  if num_devices == 1 or math.prod(shape) < FSDP_MIN_SIZE:
    return P()
  for axis in sorted(range(len(shape)), key=lambda a: (-shape[a], -a)):  # ties: the last
    if shape[axis] % num_devices == 0:
      return P(*([None] * axis), 'data')
  return P()


class ParamLayout:
  """Where G's and D's weights, their Adam states and the EMA G live between steps.

  Replicated (fsdp=False): every device holds all of them and the step is
  BigGAN-PyTorch's data parallelism. fsdp=True: each is sharded over 'data'
  (`fsdp_spec`); the step gathers the weights it computes with (`gather`,
  an all-gather XLA schedules per use) and reduce-scatters gradients
  (`scatter`), so the Adam update runs on each device's shard, as ZeRO
  (Rajbhandari et al. 2020) and FSDP do.
  """

  PARTITIONED = ('g_params', 'g_opt_state', 'd_params', 'd_opt_state', 'ema_params')

  def __init__(self, mesh: Mesh, fsdp: bool):
    self.mesh, self.fsdp = mesh, fsdp

  def leaf(self, x) -> NamedSharding:
    spec = fsdp_spec(x.shape, self.mesh.size) if self.fsdp else P()
    return NamedSharding(self.mesh, spec)

  def state(self, state_shapes):
    """NamedShardings for a TrainState (of arrays or ShapeDtypeStructs)."""
    repl = replicated(self.mesh)
    return state_shapes.replace(**{
        f: jax.tree.map(self.leaf if f in self.PARTITIONED else (lambda _: repl),
                        getattr(state_shapes, f))
        for f in state_shapes.__dataclass_fields__})

  def gather(self, params):
    if not self.fsdp:
      return params
    return jax.lax.with_sharding_constraint(params, replicated(self.mesh))

  def scatter(self, tree):
    if not self.fsdp:
      return tree
    return jax.lax.with_sharding_constraint(tree, jax.tree.map(self.leaf, tree))


def host_to_global(tree, mesh: Mesh, batch_axis: int):
  """Each host's share of a batch -> one global array sharded over the mesh.

  Hosts hold consecutive slices of the global batch along `batch_axis`
  (process i holds slice i), so the global batch is the same whatever the
  number of hosts.
  """
  sharding = batch_sharding(mesh, batch_axis)

  def put(x):
    shape = list(x.shape)
    shape[batch_axis] *= jax.process_count()
    return jax.make_array_from_process_local_data(sharding, x, tuple(shape))

  return jax.tree.map(put, tree)


def agreed(value: float) -> float:
  """Process 0's value on every host, so that all take the same checkpoint decisions."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils
  return float(multihost_utils.broadcast_one_to_all(np.float64(value)))
