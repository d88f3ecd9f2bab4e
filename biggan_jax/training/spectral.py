"""Singular-value tracking of every weight matrix (Brock et al. 2019, Sec. 4.1).

The paper's Fig. 3 follows the top three singular values σ0, σ1, σ2 of each
layer through training: in G, σ0 of a few layers (typically the first
linear) grows and explodes at collapse; D's spectra are noisier and jump at
collapse (Sec. 4.2). `track` computes them for all weights at once, cheaply
enough to run every `sv_every` steps inside the jitted train step (it works
under `jax.jit` and in `lax.cond` branches).

Method: Lanczos with full reorthogonalisation on the smaller Gram matrix (WWᵀ
or WᵀW, applied as two matvecs, never formed), from a fixed start vector, for
a fixed `num_iters`. Ritz values come from the projection QᵀAQ of the Gram
onto the Krylov basis Q (equal to the Lanczos tridiagonal in exact
arithmetic, and still right after a restart). A breakdown (an invariant
subspace, e.g. the all-ones spectrum of an orthogonally initialised W)
restarts from a fresh random vector orthogonal to Q, so repeated singular
values are found with their multiplicity.

NUM_ITERS = 48 is the smallest that meets 1e-3 relative on σ0 and 1e-2 on σ1,
σ2 with a margin on matrices of the 128 model's shapes; benchmarks/README.md
("Singular-value tracker") has the sweep that chose it and the cost.
"""

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from biggan_jax.training import regularizers

Array = jax.Array

NUM_ITERS = 48
_HI = jax.lax.Precision.HIGHEST
# A Lanczos residual below this fraction of |A| counts as a breakdown.
_BREAKDOWN_TOL = 1e-5


def _orthogonalize(v: Array, basis: Array) -> Array:
  """v minus its projection on the rows of `basis` (zero rows are inert);
  classical Gram–Schmidt applied twice ("twice is enough")."""
  for _ in range(2):
    v = v - jnp.matmul(jnp.matmul(basis, v, precision=_HI), basis, precision=_HI)
  return v


def _normalize(v: Array) -> Array:
  return v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(v.dtype).tiny)


def _krylov(matvec, n: int, num_iters: int, key: Array) -> tuple[Array, Array]:
  """(Q, QᵀAQ): the Krylov basis (num_iters, n) of the PSD operator `matvec` on R^n
  and the operator projected on it."""
  start_key, restart_key = jax.random.split(key)
  q0 = _normalize(jax.random.normal(start_key, (n,), jnp.float32))
  restarts = jax.random.normal(restart_key, (num_iters, n), jnp.float32)
  # One spare row: the last step writes a vector that is never used.
  basis = jnp.zeros((num_iters + 1, n), jnp.float32).at[0].set(q0)
  images = jnp.zeros((num_iters, n), jnp.float32)

  def step(j, carry):
    basis, images, scale = carry
    aq = matvec(basis[j])
    images = images.at[j].set(aq)
    scale = jnp.maximum(scale, jnp.linalg.norm(aq))
    r = _orthogonalize(aq, basis)
    fresh = _orthogonalize(restarts[j], basis)
    broke_down = jnp.linalg.norm(r) <= _BREAKDOWN_TOL * scale
    basis = basis.at[j + 1].set(_normalize(jnp.where(broke_down, fresh, r)))
    return basis, images, scale

  basis, images, _ = jax.lax.fori_loop(
      0, num_iters, step, (basis, images, jnp.zeros((), jnp.float32)))
  h = jnp.matmul(basis[:num_iters], images.T, precision=_HI)
  return basis[:num_iters], 0.5 * (h + h.T)


def _lanczos_eigvals(matvec, n: int, num_iters: int, key: Array) -> Array:
  """Ritz values (ascending) of the PSD operator `matvec` on R^n."""
  return jnp.linalg.eigvalsh(_krylov(matvec, n, num_iters, key)[1])


def _gram_matvec(w: Array):
  """v -> WWᵀv or WᵀWv, on the smaller side of W."""
  if w.shape[0] <= w.shape[1]:
    return lambda v: jnp.matmul(w, jnp.matmul(v, w, precision=_HI), precision=_HI)
  return lambda v: jnp.matmul(jnp.matmul(w, v, precision=_HI), w, precision=_HI)


def top_singular_values(w_mat: Array, k: int = 3, num_iters: int = NUM_ITERS) -> Array:
  """The k largest singular values of w_mat (2-D), descending, float32.

  Matrices whose small side is ≤ max(num_iters, 3k) take an exact SVD: with
  as many steps as the Gram matrix has rows, the Krylov basis runs out of
  directions and the extra steps orthogonalise roundoff; and the SVD of a
  matrix that thin costs about what num_iters matvecs do. If the small side
  is < k, the missing values are 0. Working on the Gram squares the
  condition number, so values below ~1e-3 σ0 are at float32 roundoff level.
  """
  if k > num_iters:
    raise ValueError(f'k={k} needs num_iters >= k, got {num_iters}')
  w = jax.lax.stop_gradient(w_mat).astype(jnp.float32)
  rows, cols = w.shape
  small = min(rows, cols)
  if small <= max(num_iters, 3 * k):
    s = jnp.linalg.svd(w, compute_uv=False)[:k]
  else:
    eig = _lanczos_eigvals(_gram_matvec(w), small, num_iters, jax.random.key(0))
    s = jnp.sqrt(jnp.maximum(eig[::-1][:k], 0.0))
  return jnp.pad(s, (0, k - s.shape[0]))


def top_singular_pair(w_mat: Array, num_iters: int = NUM_ITERS):
  """(σ0, σ1, u0, v0) of w_mat (2-D): the top two singular values and the top
  singular vectors, W v0 = σ0 u0, for the σ0 remedies (training/sigma_remedies.py).

  The same Lanczos run (or exact SVD for thin matrices) as
  `top_singular_values`; the top Ritz vector gives the singular vector on the
  small side, the other side is W (or Wᵀ) applied to it, and σ0 is then
  recomputed as |Wᵀu0|, so that u0ᵀ W v0 = σ0 holds for the returned vectors
  exactly (what the clamp W − (σ0 − σ_clamp) u0 v0ᵀ relies on). Vectors are
  float32 and carry no gradient.
  """
  w = jax.lax.stop_gradient(w_mat).astype(jnp.float32)
  rows, cols = w.shape
  small = min(rows, cols)
  tiny = jnp.finfo(jnp.float32).tiny
  if small <= max(num_iters, 6):
    u, s, vt = jnp.linalg.svd(w, full_matrices=False)
    s1 = s[1] if s.shape[0] > 1 else jnp.zeros((), jnp.float32)
    return s[0], s1, u[:, 0], vt[0]
  basis, h = _krylov(_gram_matvec(w), small, num_iters, jax.random.key(0))
  eig, vecs = jnp.linalg.eigh(h)
  x = _normalize(jnp.matmul(vecs[:, -1], basis, precision=_HI))
  s1 = jnp.sqrt(jnp.maximum(eig[-2], 0.0))
  if rows <= cols:     # x is u0 (the Gram was WWᵀ)
    u0 = x
    wtu = jnp.matmul(u0, w, precision=_HI)
    s0 = jnp.linalg.norm(wtu)
    return s0, s1, u0, wtu / jnp.maximum(s0, tiny)
  v0 = x               # the Gram was WᵀW
  wv = jnp.matmul(w, v0, precision=_HI)
  s0 = jnp.linalg.norm(wv)
  u0 = wv / jnp.maximum(s0, tiny)
  # σ0 as |Wᵀu0| for this u0, as in the other branch.
  wtu = jnp.matmul(u0, w, precision=_HI)
  s0 = jnp.linalg.norm(wtu)
  return s0, s1, u0, wtu / jnp.maximum(s0, tiny)


def track(params: Any, k: int = 3, exclude: Sequence[str] = (),
          num_iters: int = NUM_ITERS) -> dict[str, Array]:
  """Flat name ('block0/conv1/kernel') -> (k,) top singular values of every
  weight matrix, in the (out, in) view of `regularizers.weight_matrices`.

  Unlike ortho reg, nothing is excluded by default: the shared embedding is
  tracked too.
  """
  return {name: top_singular_values(w, k, num_iters)
          for name, w in regularizers.weight_matrices(params, exclude).items()}
