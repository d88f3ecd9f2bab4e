"""BigGAN and BigGAN-deep in JAX/Flax (Brock, Donahue & Simonyan, ICLR 2019).

`biggan_jax.load_generator(path)` opens a training workdir or a converted
checkpoint for sampling (biggan_jax/sampling/loading.py); it is imported on
first use so that `import biggan_jax` stays cheap.

gs:// paths go through gcsfs, not TensorFlow's GCS client (utils/storage.py),
chosen here, before any path is opened.
"""

from biggan_jax.utils import storage as _storage

_storage.route_gs()


def __getattr__(name):
  if name == 'load_generator':
    from biggan_jax.sampling.loading import load_generator
    return load_generator
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
