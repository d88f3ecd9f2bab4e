"""`--mode=summary`: parameter counts of G and D for a config, without weights.

Shapes come from `jax.eval_shape` of `init`, so even the 512x512 models are
summarised in seconds on a CPU and nothing is allocated. Counts are over the
'params' collection only (spectral-norm u vectors and BN running statistics
are state, not parameters), which is how BigGAN-PyTorch and the paper's
Table 1 count them.
"""

import math
import os
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from biggan_jax import models
from biggan_jax.utils import files


def _natural(name: str):
  """Sort key putting block2 before block10."""
  return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def _size(tree) -> int:
  return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def variable_shapes(module: nn.Module, *inputs) -> dict[str, Any]:
  """ShapeDtypeStructs of every variable `module.init` would create."""
  init = lambda rng, *xs: module.init({'params': rng}, *xs, train=False)
  return jax.eval_shape(init, jax.random.key(0), *inputs)


def count_parameters(variables) -> dict[str, Any]:
  """Parameters per top-level submodule, their total, and the size of other collections."""
  params = variables.get('params', {})
  return {
      'total': _size(params),
      'modules': {name: _size(params[name]) for name in sorted(params, key=_natural)},
      'state': {name: _size(tree) for name, tree in variables.items() if name != 'params'},
  }


def model_summary(model_config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Parameter counts of the G and D that `model_config` describes."""
  batch, res = 2, model_config.resolution
  z = jax.ShapeDtypeStruct((batch, model_config.dim_z), jnp.float32)
  y = jax.ShapeDtypeStruct((batch,), jnp.int32)
  x = jax.ShapeDtypeStruct((batch, res, res, 3), jnp.float32)
  g = count_parameters(variable_shapes(models.create_generator(model_config), z, y))
  d = count_parameters(variable_shapes(models.create_discriminator(model_config), x, y))
  return {
      'generator_params': g['total'],
      'discriminator_params': d['total'],
      'generator_modules': g['modules'],
      'discriminator_modules': d['modules'],
      'generator_state': g['state'],
      'discriminator_state': d['state'],
      'model': model_config.to_dict(),
  }


def format_table(summary: dict[str, Any]) -> str:
  """The per-module parameter table printed by `--mode=summary`."""
  lines = []
  for net in ('generator', 'discriminator'):
    total = summary[f'{net}_params']
    lines.append(f'{net:<24}{"params":>14}{"share":>9}')
    for name, n in summary[f'{net}_modules'].items():
      lines.append(f'  {name:<22}{n:>14,}{n / max(total, 1):>9.1%}')
    state = ', '.join(f'{k} {v:,}' for k, v in summary[f'{net}_state'].items())
    lines.append(f'  {"total":<22}{total:>14,}' + (f'   (state: {state})' if state else ''))
    lines.append('')
  g, d = summary['generator_params'], summary['discriminator_params']
  lines.append(f'G + D: {g + d:,} parameters ({(g + d) / 1e6:.2f}M)')
  return '\n'.join(lines)


def summarize(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Prints the parameter table and writes `workdir`/summary.json."""
  summary = model_summary(config.model)
  print(format_table(summary))
  path = os.path.join(workdir, 'summary.json')
  files.write_json(path, summary)  # atomically: a failure leaves no half file
  print(f'wrote {path}')
  return summary
