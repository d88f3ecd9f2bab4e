"""Checksums of checkpointed arrays: computed on the device at save, verified after restore.

Orbax restores a checkpoint with a flipped byte in a data file silently when
the byte lands in an uncompressed chunk (the values are simply different), and
a truncated or missing file only fails when it is read. Each saved item's
leaves therefore get two 32-bit sums of their bit patterns, stored in the
checkpoint's meta; a restored item whose sums differ is not used.

Per leaf, with b_i the bits of element i (bitcast to uint32, after widening
16- and 8-bit types) and arithmetic mod 2^32:
  s1 = Σ b_i   (any single changed value changes it: it moves b_i by ±2^k)
  s2 = Σ (i + 1) b_i   (catches swapped or offsetting changes s1 misses).
Integer sums are exact in any order, so the result does not depend on the
mesh or the reduction order, and the device reads each leaf once. Not a
cryptographic hash: it detects damage, not tampering.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _bits(x: jax.Array) -> jax.Array:
  """The bit pattern of `x` as a flat uint32 vector."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == jnp.bool_:
    return x.reshape(-1).astype(jnp.uint32)
  size = jnp.dtype(x.dtype).itemsize
  if size == 8:
    return jax.lax.bitcast_convert_type(x, jnp.uint32).reshape(-1)
  unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}[size]
  return jax.lax.bitcast_convert_type(x, unsigned).reshape(-1).astype(jnp.uint32)


def _sums(leaves):
  out = []
  for x in leaves:
    b = _bits(x)
    weights = jnp.arange(1, b.shape[0] + 1, dtype=jnp.uint32)
    out.append(jnp.stack([jnp.sum(b, dtype=jnp.uint32),
                          jnp.sum(b * weights, dtype=jnp.uint32)]))
  return jnp.stack(out) if out else jnp.zeros((0, 2), jnp.uint32)


_device_sums = jax.jit(_sums)


def checksums(tree) -> dict[str, str]:
  """Leaf path (jax keystr) -> 's1:s2' in hex, for every array leaf of `tree`."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  paths, leaves = [p for p, _ in flat], [x for _, x in flat]
  sums = np.asarray(jax.device_get(_device_sums(leaves)))
  return {jax.tree_util.keystr(p): f'{int(a):08x}:{int(b):08x}'
          for p, (a, b) in zip(paths, sums)}


def mismatch(tree, expected: dict[str, str]) -> str | None:
  """None when `tree` has exactly the `expected` checksums; else what differs, briefly."""
  got = checksums(tree)
  if got == expected:
    return None
  missing = sorted(set(expected) - set(got))
  extra = sorted(set(got) - set(expected))
  if missing or extra:
    return (f'{len(missing)} saved arrays missing, {len(extra)} unexpected'
            f' (e.g. {(missing or extra)[0]})')
  bad = [k for k in expected if got[k] != expected[k]]
  return f'checksum mismatch in {len(bad)} of {len(expected)} arrays (e.g. {bad[0]})'
