"""Modified orthogonal regularisation (Brock et al. 2019, Sec. 3.1).

R_β(W) = β ‖WWᵀ ⊙ (1 − I)‖²_F for every weight W viewed as an (out, in)
matrix: the Gram matrix over *output filters*, as BigGAN-PyTorch's
`utils.ortho` computes it (the paper writes WᵀW with the filters as W's
columns; it is the same matrix). Unlike plain orthogonal regularisation it
leaves the filter norms free and only pushes different filters apart.

`weight_matrices` is the one place that decides which parameters are weight
matrices and how each is viewed as (out, in); spectral.py uses it too.
"""

from typing import Any, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def _key_name(k) -> str:
  for attr in ('key', 'name', 'idx'):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def matrix_view(name: str, w: Array) -> Array:
  """W as (out, in), BigGAN-PyTorch's `weight.view(weight.shape[0], -1)`.

  Embedding tables (num_classes, dim) stay as they are: torch's nn.Embedding
  weight is already (num, dim), so `out` is the class axis. Every other leaf
  follows flax's layout with `out` last (conv HWIO, dense (in, out)) and is
  reshaped to (-1, out) and transposed; for a conv this orders `in` as
  (h, w, c) rather than torch's (c, h, w), which permutes columns and changes
  neither the Gram matrix over filters nor the singular values.
  """
  if name.rsplit('/', 1)[-1] == 'embedding':
    return w
  return w.reshape(-1, w.shape[-1]).T


def weight_matrices(params: Any, exclude: Sequence[str] = ()) -> dict[str, Array]:
  """Flat name ('block0/conv1/kernel') -> (out, in) view of each ≥2-D param.

  1-D and scalar params (biases, BN gains, attention gamma) are skipped; so
  is any param whose name contains one of `exclude` (e.g. 'shared' for G's
  shared class embedding, which upstream leaves out of ortho reg).
  """
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if jnp.ndim(leaf) < 2:
      continue
    name = '/'.join(_key_name(k) for k in path)
    if any(e in name for e in exclude):
      continue
    out[name] = matrix_view(name, leaf)
  return out


def map_weight_matrices(fn, params: Any, exclude: Sequence[str] = ()) -> Any:
  """`params` with each weight matrix W of `weight_matrices` replaced by fn(name, W),
  fn taking and returning the (out, in) view; other leaves are kept."""
  def visit(path, leaf):
    name = '/'.join(_key_name(k) for k in path)
    if jnp.ndim(leaf) < 2 or any(e in name for e in exclude):
      return leaf
    new = fn(name, matrix_view(name, leaf))
    return new if name.rsplit('/', 1)[-1] == 'embedding' else new.T.reshape(leaf.shape)
  return jax.tree_util.tree_map_with_path(visit, params)


def _offdiag_gram_sq(w: Array) -> Array:
  """‖WWᵀ ⊙ (1 − I)‖²_F for W (out, in), without forming an out×out matrix
  when out > in: ‖WWᵀ‖²_F = ‖WᵀW‖²_F, so it equals ‖WᵀW‖²_F − Σᵢ ‖wᵢ‖⁴.

  G's first linear is (24576, 20) as a matrix: its filter Gram would take
  2.4 GB, its input Gram 1.6 kB. The subtraction cancels only when the
  off-diagonal mass is small next to Σᵢ ‖wᵢ‖⁴; with more rows than columns
  the rows cannot be orthogonal, and for equal row norms the off-diagonal
  mass is at least (out/in − 1) Σᵢ ‖wᵢ‖⁴.
  """
  w = w.astype(jnp.promote_types(w.dtype, jnp.float32))
  hi = jax.lax.Precision.HIGHEST
  out_dim, in_dim = w.shape
  if out_dim <= in_dim:
    gram = jnp.matmul(w, w.T, precision=hi)
    off_diag = 1.0 - jnp.eye(out_dim, dtype=gram.dtype)
    return jnp.sum(jnp.square(gram * off_diag))
  gram_in = jnp.matmul(w.T, w, precision=hi)
  row_sq = jnp.sum(jnp.square(w), axis=1)
  return jnp.sum(jnp.square(gram_in)) - jnp.sum(jnp.square(row_sq))


def ortho_penalty(params: Any, beta: float, exclude: Sequence[str] = ('shared',),
                  reference_grad: bool = False) -> Array:
  """Σ_W β ‖WWᵀ ⊙ (1 − I)‖²_F over `weight_matrices(params, exclude)`.

  Add it to the loss. Its gradient is 4β((WWᵀ) ⊙ (1 − I))W per weight.
  BigGAN-PyTorch (utils.ortho) skips the loss and adds 2β((WWᵀ) ⊙ (1 − I))W
  to the gradient, half the paper's; `reference_grad=True` halves the penalty
  so that its gradient matches upstream's exactly (β=1e-4 in the paper;
  upstream's ImageNet launch script sets G_ortho 0).
  """
  total = sum((_offdiag_gram_sq(w) for w in weight_matrices(params, exclude).values()),
              jnp.zeros((), jnp.float32))
  scale = 0.5 * beta if reference_grad else beta
  return scale * total
