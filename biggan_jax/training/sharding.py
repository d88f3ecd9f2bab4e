"""The device mesh and how arrays are laid out on it.

One 'data' axis over every device of every host: the batch is split over it
and parameters are replicated (BigGAN's weights fit one device up to 512px).
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices=None) -> Mesh:
  """A 1-D 'data' mesh over `devices` (default: all devices of all hosts)."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int) -> NamedSharding:
  """Arrays whose axis `batch_axis` is the (global) batch."""
  return NamedSharding(mesh, P(*([None] * batch_axis), 'data'))


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
