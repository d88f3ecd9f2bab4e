"""ImageNet's class names, shipped in the package, and name lookup."""

import ast
import importlib.metadata
import re

import numpy as np
import pytest

from biggan_jax import sampling
from biggan_jax.sampling import class_names


def imagenet_sampler():
  """A Sampler's class lookup only needs its meta and model config."""
  sampler = sampling.Sampler.__new__(sampling.Sampler)
  sampler.num_classes = 1000
  sampler.class_names = class_names.names_for({'class_names': 'imagenet'}, 1000)
  sampler._class_index = class_names.ClassIndex(sampler.class_names)
  return sampler


def test_imagenet_lookup_by_name_synonym_wnid_and_id():
  s = imagenet_sampler()
  np.testing.assert_array_equal(
      s.class_ids(['goldfish', 'golden retriever', 'Golden_Retriever', '207', 980,
                   'Carassius auratus', 'n01443537', 'crane', 'crane bird']),
      [1, 207, 207, 207, 980, 1, 1, 517, 134])
  with pytest.raises(ValueError, match=r"'sand viper' is ambiguous: it names \d+ \("):
    s.class_ids('sand viper')
  with pytest.raises(ValueError, match="unknown class 'unicorn': it is not one of"):
    s.class_ids('unicorn')


def test_which_checkpoints_get_imagenet_names():
  names = class_names.names_for({'class_names': 'imagenet'}, 1000)
  assert len(names) == 1000 and names[1] == 'goldfish' and names[207] == 'golden retriever'
  assert class_names.names_for({'source': 'huggingface'}, 1000) == names  # older conversions
  assert class_names.names_for({'source': 'huggingface'}, 10) is None
  assert class_names.names_for({'source': 'biggan-pytorch'}, 1000) is None
  assert class_names.names_for({'class_names': ['a', 'b']}, 2) == ['a', 'b']


def test_the_data_file_matches_its_sources():
  """Names are torchvision's _IMAGENET_CATEGORIES, wnids pytorch-pretrained-BigGAN's offsets."""
  classes = class_names.imagenet_classes()
  assert len(classes) == 1000 and len({c['name'] for c in classes}) == 1000
  # Both are [test] requirements; read as text through their installed files (torchvision's ops
  # need not load, and another test may have put a stand-in torchvision in sys.modules).
  meta = importlib.metadata.distribution('torchvision').locate_file('torchvision/models/_meta.py')
  listed = ast.literal_eval(re.search(r'_IMAGENET_CATEGORIES = (\[.*?\])', meta.read_text(),
                                      re.S).group(1))
  assert [c['name'] for c in classes] == listed
  utils = importlib.metadata.distribution('pytorch-pretrained-biggan').locate_file(
      'pytorch_pretrained_biggan/utils.py')
  offsets = ast.literal_eval(re.search(r'^IMAGENET = (\{.*\})', utils.read_text(), re.M).group(1))
  assert {int(c['wnid'][1:]): i for i, c in enumerate(classes)} == offsets
