"""Times `spectral.track` on the ImageNet-128 BigGAN's G and D weights.

  python benchmarks/sv_tracker.py              # ms per call under jit
  python benchmarks/sv_tracker.py --accuracy   # error vs num_iters (sets NUM_ITERS)

Weights are random arrays of the eval_shape'd parameter shapes (initialising
the 158M-parameter model for real is slow on CPU, and the cost of Lanczos
does not depend on the values). --accuracy compares σ0, σ1, σ2 with
numpy's SVD on Gaussian, orthogonal-init and orthogonal-plus-noise matrices
of the model's large shapes; it takes several minutes on 2 CPU cores.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from biggan_jax import config, models
from biggan_jax.training import spectral


def model_params(seed: int = 0) -> dict:
  m = config.base_config().model
  g, d = models.create_generator(m), models.create_discriminator(m)
  key = {'params': jax.random.key(0)}
  y = jnp.zeros((1,), jnp.int32)
  shapes = {
      'G': jax.eval_shape(lambda: g.init(key, jnp.zeros((1, m.dim_z)), y, train=False)),
      'D': jax.eval_shape(lambda: d.init(
          key, jnp.zeros((1, m.resolution, m.resolution, 3)), y, train=False)),
  }
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32)),
      {name: s['params'] for name, s in shapes.items()})


def benchmark(repeats: int) -> None:
  params = model_params()
  n = sum(x.size for x in jax.tree_util.tree_leaves(params))
  track = jax.jit(spectral.track)
  t0 = time.perf_counter()
  out = jax.block_until_ready(track(params))
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(track(params))
    times.append(time.perf_counter() - t0)
  print(f'{jax.devices()[0].device_kind}: {len(out)} weight matrices, {n / 1e6:.1f}M params, '
        f'num_iters={spectral.NUM_ITERS}')
  print(f'first call (compile + run) {first:.1f} s; '
        f'track: {1e3 * np.median(times):.0f} ms per call (median of {repeats})')


def accuracy(iters=(24, 32, 40, 48), seeds=(0, 1, 2)) -> None:
  shapes = [(64, 576), (384, 3456), (768, 6912), (768, 13824), (1536, 13824),
            (1536, 1536), (1000, 1536), (1536, 148)]
  fns = {it: jax.jit(lambda w, it=it: spectral.top_singular_values(w, 3, it)) for it in iters}
  worst = {it: np.zeros(2) for it in iters}
  for seed in seeds:
    rng = np.random.default_rng(seed)
    for rows, cols in shapes:
      gauss = rng.standard_normal((rows, cols)).astype(np.float32)
      ortho, _ = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
      ortho = (ortho if rows > cols else ortho.T).astype(np.float32)
      noise = gauss / np.sqrt(max(rows, cols))
      cases = {'gauss': gauss, 'ortho': ortho, 'ortho+0.1noise': ortho + 0.1 * noise,
               'ortho+noise': ortho + noise}
      for kind, w in cases.items():
        ref = np.linalg.svd(w.astype(np.float64), compute_uv=False)[:3]
        row = []
        for it in iters:
          err = np.abs(np.asarray(fns[it](w)) - ref) / ref
          worst[it] = np.maximum(worst[it], [err[0], err[1:].max()])
          row.append(f'{it}: {err[0]:.1e} / {err[1:].max():.1e}')
        print(f'seed {seed} {rows}x{cols} {kind:15s}', '  '.join(row), flush=True)
  print('worst relative error (σ0 / σ1,σ2) by num_iters:')
  for it in iters:
    print(f'  {it}: {worst[it][0]:.1e} / {worst[it][1]:.1e}')


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--accuracy', action='store_true')
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  if args.accuracy:
    accuracy()
  else:
    benchmark(args.repeats)
