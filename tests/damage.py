"""Deterministic damage to a saved checkpoint item, for the walk-back tests.

A flipped byte in an OCDBT data file is not deterministic: zstd may read it
as framing (seen: "Truncated Zstd-compressed stream"), it may land in the per-process
b-tree node at the file's end (restores read the root manifest's copy of the
index, so nothing changes), or in a value (it changes silently). The last is
the case checksums exist for; `change_a_value` makes it every time by
rewriting one element through TensorStore, so Orbax restores the item without
complaint and only the checksums in the meta see it.
"""

import json
import pathlib

import numpy as np
import tensorstore as ts


def change_a_value(item_dir) -> str:
  """Adds 1 to the first element of the first floating array in `item_dir`; returns its key."""
  if str(item_dir).startswith('gs://'):  # TensorStore's GCS driver (the emulator's variables).
    base = {'driver': 'ocdbt', 'base': f'{str(item_dir).rstrip("/")}/'}
  else:
    base = {'driver': 'ocdbt', 'base': f'file://{pathlib.Path(item_dir).resolve()}/'}
  kv = ts.KvStore.open(base).result()
  for key in sorted(k.decode() for k in kv.list().result()):
    if not key.endswith('/.zarray'):
      continue
    name = key[:-len('/.zarray')]
    meta = json.loads(kv.read(key).result().value)
    if np.dtype(meta['dtype']).kind != 'f' or not all(meta['shape']):
      continue
    array = ts.open({'driver': 'zarr', 'kvstore': {**base, 'path': name + '/'}}).result()
    first = array[(0,) * array.rank]
    first.write(np.asarray(first.read().result()) + 1).result()
    return name
  raise ValueError(f'{item_dir} holds no floating array')
