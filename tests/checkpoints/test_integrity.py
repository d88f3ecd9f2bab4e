"""Checkpoint checksums: every kind of leaf, any changed value, any mesh layout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from biggan_jax.checkpoints import integrity
from biggan_jax.training import sharding


def tree():
  rng = np.random.default_rng(0)
  return {'w': jnp.asarray(rng.standard_normal((64, 8)), jnp.float32),
          'half': jnp.asarray(rng.standard_normal(16), jnp.bfloat16),
          'count': jnp.int32(7), 'key': jax.random.PRNGKey(3),
          'mask': jnp.asarray([True, False, True]), 'bytes': jnp.arange(5, dtype=jnp.uint8)}


def test_checksums_are_two_sums_of_the_bit_patterns():
  t = tree()
  sums = integrity.checksums(t)
  assert set(sums) == {"['w']", "['half']", "['count']", "['key']", "['mask']", "['bytes']"}
  bits = np.asarray(t['w']).view(np.uint32).reshape(-1).astype(np.uint64)
  s1 = int(bits.sum() % 2**32)
  s2 = int((bits * np.arange(1, bits.size + 1, dtype=np.uint64)).sum() % 2**32)
  assert sums["['w']"] == f'{s1:08x}:{s2:08x}'
  assert sums["['count']"] == '00000007:00000007'
  assert sums["['bytes']"] == f'{10:08x}:{0 * 1 + 1 * 2 + 2 * 3 + 3 * 4 + 4 * 5:08x}'


@pytest.mark.parametrize('leaf', ['w', 'half', 'count', 'key', 'mask', 'bytes'])
def test_one_changed_value_is_caught(leaf):
  t = tree()
  expected = integrity.checksums(t)
  x = np.array(t[leaf])
  flat = x.reshape(-1)
  if x.dtype == np.bool_:
    flat[1] = ~flat[1]
  else:  # flip the lowest bit of one element: the smallest change there is
    bits = flat.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[x.dtype.itemsize])
    bits[-1] ^= 1
  t[leaf] = jnp.asarray(x, dtype=t[leaf].dtype)
  problem = integrity.mismatch(t, expected)
  assert problem == f"checksum mismatch in 1 of 6 arrays (e.g. ['{leaf}'])"


def test_swapped_values_are_caught():
  """The sum alone cannot see two values trade places; the weighted sum does."""
  t = tree()
  expected = integrity.checksums(t)
  t['w'] = t['w'][::-1]
  assert 'checksum mismatch' in integrity.mismatch(t, expected)


def test_missing_or_extra_arrays_are_named():
  t = tree()
  expected = integrity.checksums(t)
  del t['mask']
  assert integrity.mismatch(t, expected) == "1 saved arrays missing, 0 unexpected (e.g. ['mask'])"
  assert integrity.mismatch(tree(), integrity.checksums(tree())) is None


def test_sharded_and_single_device_give_the_same_checksums():
  """Integer sums do not depend on the reduction order: any mesh, the same result."""
  t = tree()
  mesh = sharding.make_mesh()
  assert mesh.devices.size == 8
  sharded = dict(t, w=jax.device_put(t['w'], NamedSharding(mesh, P('data'))))
  assert integrity.checksums(sharded) == integrity.checksums(jax.device_get(t))
