"""The optional installs (setup.cfg's extras) and one line that says which one is missing.

The base install is the inference set (models, sampling, pretrained downloads,
FID/KID); training needs TensorFlow (tf.data), TFDS and clu, the digits demo
scikit-learn: `pip install "biggan_jax[train]"`. Checked with find_spec, before
anything is imported or built, so a missing package is one `error:` line, not
a traceback from deep inside the loop.
"""

import importlib.util
import os
import sys

from absl import logging

EXTRAS = {
    'train': {'tensorflow': 'tensorflow', 'tensorflow_datasets': 'tensorflow-datasets',
              'clu': 'clu'},
    'digits': {'sklearn': 'scikit-learn'},  # in the train extra
}


class MissingExtraError(ValueError):
  """An optional dependency is not installed; the message says what to install."""


def missing(extra: str) -> list[str]:
  """The pip names of `extra`'s packages that are not importable."""
  return [pip for module, pip in EXTRAS[extra].items()
          if importlib.util.find_spec(module) is None]


def require(extra: str, what: str) -> None:
  """Raises MissingExtraError unless `extra`'s packages are all installed."""
  absent = missing(extra)
  if absent:
    name = 'train' if extra == 'digits' else extra
    raise MissingExtraError(
        f'{what} needs {", ".join(absent)}, not installed: pip install "biggan_jax[{name}]" '
        f'(in a checkout: pip install -e ".[{name}]")')


def require_for_training(config) -> None:
  """Training's packages, and scikit-learn for the digits demo's data."""
  require('train', 'training')
  if config.dataset.name == 'digits':
    require('digits', 'the digits dataset')


def import_tensorflow():
  """TensorFlow (the train extra), imported with fd 2 on /dev/null unless absl
  shows INFO (--verbosity=info): while its libraries load, TF logs notes
  (oneDNN, twice) through C++ logging that TF_CPP_MIN_LOG_LEVEL does not reach
  yet. Python's own errors still reach stderr: they are raised after."""
  if 'tensorflow' in sys.modules or logging.get_verbosity() >= logging.INFO:
    import tensorflow
    return tensorflow
  saved = os.dup(2)
  try:
    with open(os.devnull, 'w') as null:
      os.dup2(null.fileno(), 2)
    import tensorflow
  finally:
    os.dup2(saved, 2)
    os.close(saved)
  return tensorflow
