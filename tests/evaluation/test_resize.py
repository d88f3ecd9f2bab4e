"""clean-fid's 'clean' resize on device against clean-fid's own (PIL) on the same images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from biggan_jax.evaluation import extractor, inception, resize
from pytorch_fid_shim import import_reference


@pytest.mark.parametrize('size', [16, 64, 128, 256, 299, 512])
def test_clean_resize_is_clean_fids(size):
  clean = import_reference('cleanfid.resize')
  if clean is None:
    pytest.skip('clean-fid is not installed')
  rng = np.random.default_rng(size)
  x = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
  g = rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)  # G's float output
  fn = clean.build_resizer('clean')
  for images, as_255 in ((x, x), (g, (g + 1) * 127.5)):
    want = np.stack([fn(im) for im in as_255])  # float [0, 255], 299x299
    ours = np.asarray(resize.clean_inception_input(jnp.asarray(images)))
    assert ours.shape == (len(images), 299, 299, 3)
    # The network sees (x - 128) / 128, as clean-fid's InceptionV3W.forward.
    np.testing.assert_allclose(ours * 128 + 128, want, rtol=0, atol=5e-3)


def test_the_extractor_uses_the_chosen_resize():
  """The network is shared; only the resize program differs between the modes."""
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8))
  variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), inception.expected_variables())
  prepared = {}
  for mode in resize.MODES:
    e = extractor.FeatureExtractor(variables, 8, resize=mode)
    prepared[mode] = np.asarray(e._prepare(x))
    assert e.resize == mode and e._network is extractor.FeatureExtractor(variables, 8)._network
  np.testing.assert_allclose(prepared['clean'], resize.clean_inception_input(x), atol=1e-6)
  np.testing.assert_allclose(prepared['pytorch-fid'], inception.to_inception_input(x),
                             atol=1e-6)
  with pytest.raises(ValueError, match="resize='lanczos': one of pytorch-fid, clean"):
    extractor.FeatureExtractor(variables, 8, resize='lanczos')
