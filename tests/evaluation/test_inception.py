"""The FID Inception against pytorch-fid's, with random weights in its state-dict format.

pytorch-fid's `InceptionV3([3])` (the FID graph: FIDInceptionA/C/E_1/E_2) is
built with a random state dict instead of the download; our Flax network
loads the same dict from a torch.save'd .pth with its torch-free reader, and
the pool features and 1008 logits must agree to rel 1e-4 at input sizes 64,
299 and 320. pytorch-fid needs only torchvision's Python model code; where
torchvision's compiled ops do not load against the installed torch, its
package is stubbed (tests/pytorch_fid_shim.py).
"""

import os

import jax
import numpy as np
import pytest

from biggan_jax.evaluation import extractor as extractor_lib
from biggan_jax.evaluation import inception
from biggan_jax.utils import download
from inception_fixture import (RTOL, images as _images, one_torch_thread, pytorch_fid_inception,
                               random_state_dict, rel_err, save_pth)

@pytest.fixture(scope='module')
def state():
  return random_state_dict()


@pytest.fixture(scope='module')
def weights_file(state, tmp_path_factory):
  pytest.importorskip('torch')
  path = tmp_path_factory.mktemp('weights') / inception.WEIGHTS_FILE
  save_pth(state, path)
  return str(path)


def pytorch_fid_reference(state: dict[str, np.ndarray]):
  """pytorch-fid's InceptionV3([3]) holding `state`, as images in [0, 1] -> (pool, logits)."""
  import torch
  fid_inception = pytorch_fid_inception()
  tensors = {k: torch.from_numpy(v) for k, v in state.items()}
  original = fid_inception.load_state_dict_from_url
  fid_inception.load_state_dict_from_url = lambda *args, **kwargs: tensors
  try:
    model = fid_inception.InceptionV3([3]).eval()  # strict load: every name and shape fits.
  finally:
    fid_inception.load_state_dict_from_url = original

  def run(images01: np.ndarray):
    with torch.no_grad(), one_torch_thread():
      pool = model(torch.from_numpy(images01.transpose(0, 3, 1, 2)))[0][:, :, 0, 0]
      logits = torch.nn.functional.linear(pool, tensors['fc.weight'], tensors['fc.bias'])
    return pool.numpy(), logits.numpy()

  run.model = model
  return run


@pytest.fixture(scope='module')
def reference(state):
  return pytorch_fid_reference(state)


@pytest.fixture(scope='module')
def extractor(weights_file):
  return extractor_lib.FeatureExtractor(weights_file, batch_size=2, devices=jax.devices()[:1])


@pytest.mark.parametrize('size', [64, 299, 320])
def test_matches_pytorch_fid(extractor, reference, size):
  images = _images(2, size, seed=size)
  ours = extractor(images)
  pool, logits = reference(images.astype(np.float32) / 255)
  assert ours['pool'].shape == (2, 2048) and ours['logits'].shape == (2, 1008)
  assert rel_err(ours['pool'], pool) <= RTOL
  assert rel_err(ours['logits'], logits) <= RTOL
  # Random weights that keep the features informative: O(1), different per image.
  assert 0.05 < pool.mean() < 20
  assert np.abs(pool[0] - pool[1]).mean() > 0.05 * pool.mean()
  assert logits.std() > 0.1


def test_float_input_in_minus_one_one(extractor, reference):
  images = _images(2, 64, seed=1)
  ours = extractor(images.astype(np.float32) / 127.5 - 1)
  pool, _ = reference(images.astype(np.float32) / 255)
  assert rel_err(ours['pool'], pool) <= RTOL


def test_resize_matches_torch_interpolate():
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(0)
  for h, w in [(64, 64), (320, 320), (512, 512), (100, 150)]:
    images = rng.uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
    ours = np.asarray(inception.to_inception_input(images))
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy((images + 1) / 2).permute(0, 3, 1, 2), size=(299, 299),
        mode='bilinear', align_corners=False) * 2 - 1
    assert np.abs(ours - theirs.permute(0, 2, 3, 1).numpy()).max() < 2e-6, (h, w)


def test_sharded_batches_match_one_device(weights_file, extractor):
  """By default the mesh is every local device (8 here) and batch 5 rounds up to 8.

  Run on 2 of them (cheaper on 2 cores): batch 3 -> 4, 5 images = 2 batches,
  the last padded; the images come as a jax.Array (G's samples do).
  """
  default = extractor_lib.FeatureExtractor(weights_file, batch_size=5)
  assert default.mesh.devices.size == jax.device_count() == 8 and default.batch_size == 8
  sharded = extractor_lib.FeatureExtractor(weights_file, batch_size=3, devices=jax.devices()[:2])
  assert sharded.batch_size == 4
  images = _images(5, 48, seed=3)
  ours, one = sharded(jax.numpy.asarray(images)), extractor(images)
  assert ours['pool'].shape == (5, 2048)
  assert rel_err(ours['pool'], one['pool']) <= 1e-5
  assert rel_err(ours['logits'], one['logits']) <= 1e-5
  assert sharded(images[:0])['pool'].shape == (0, 2048)


def test_bad_images(extractor):
  with pytest.raises(ValueError, match='3 channels'):
    extractor(np.zeros((1, 8, 8, 1), np.uint8))
  with pytest.raises(ValueError, match=r'expected \[-1, 1\]'):
    extractor(np.full((1, 8, 8, 3), 255.0, np.float32))


# ---------------------------------------------------------------------------
# The torch-free .pth reader and load_weights.
# ---------------------------------------------------------------------------

def test_load_weights_maps_every_entry(state, weights_file):
  variables = inception.load_weights(weights_file)
  conv = variables['params']['Mixed_6b']['branch7x7_2']['conv']['kernel']
  assert conv.shape == (1, 7, 128, 128)  # (1, 7) kernel as HWIO
  np.testing.assert_array_equal(
      conv, state['Mixed_6b.branch7x7_2.conv.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables['batch_stats']['Mixed_7c']['branch_pool']['bn']['var'],
                                state['Mixed_7c.branch_pool.bn.running_var'])
  np.testing.assert_array_equal(variables['params']['fc']['kernel'], state['fc.weight'].T)


def test_load_weights_errors(state, tmp_path):
  pytest.importorskip('torch')
  partial = dict(state)
  del partial['Mixed_5b.branch1x1.bn.running_var']
  path = tmp_path / 'partial.pth'
  save_pth(partial, path)
  with pytest.raises(ValueError, match=r'partial.pth: not the FID Inception.*missing '
                     r"\['Mixed_5b.branch1x1.bn.running_var'\]"):
    inception.load_weights(str(path))
  wrong = dict(state, **{'fc.weight': np.zeros((1000, 2048), np.float32),
                         'fc.bias': np.zeros(1000, np.float32)})
  save_pth(wrong, path)
  with pytest.raises(ValueError, match=r'fc.(weight|bias) has shape \((1000, 2048|1000,)\), '
                     r'the FID Inception expects \(1008'):
    inception.load_weights(str(path))


def test_load_weights_cache_and_download(weights_file, tmp_path, monkeypatch):
  monkeypatch.setenv('BIGGAN_JAX_CACHE', str(tmp_path))

  def offline(url, timeout):
    raise OSError(f'no network for {url} ({timeout} s)')

  monkeypatch.setattr(download.urllib.request, 'urlopen', offline)
  with pytest.raises(ValueError, match='pass --weights=FILE') as e:
    inception.load_weights()
  assert '\n' not in str(e.value) and os.listdir(tmp_path) == []  # no partial file left.

  class Response:  # the release file, served from disk; then a corrupt one.

    def __init__(self, data):
      self.data = data
      self.headers = {'Content-Length': str(len(data))}

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      del exc

    def read(self, n):
      chunk, self.data = self.data[:n], self.data[n:]
      return chunk

  data = open(weights_file, 'rb').read()
  monkeypatch.setattr(download.urllib.request, 'urlopen', lambda url, timeout: Response(data))
  with pytest.raises(ValueError, match=r'sha256 prefix \w+\.\.\. is not the expected 6726825d'):
    inception.load_weights()  # random weights do not have the release's hash.
  assert os.listdir(tmp_path) == []
  os.symlink(weights_file, tmp_path / inception.WEIGHTS_FILE)  # a cached copy is used as is.
  variables = inception.load_weights()
  assert variables['params']['fc']['kernel'].shape == (2048, 1008)


def test_fid_end_to_end_matches_pytorch_fid(extractor, reference, tmp_path):
  """PNG folders -> statistics -> FID: ours (FeatureExtractor, compute_stats,
  frechet_distance) against pytorch-fid's calculate_activation_statistics and
  calculate_frechet_distance.

  mu and sigma are compared at 2048-d; the FID on the leading 4 features
  (full rank with 6 images; one 2048-d sqrtm takes ~10 s on 2 cores).
  """
  from PIL import Image
  from pytorch_fid import fid_score
  from biggan_jax.evaluation import image_folder, metrics
  ours, theirs = [], []
  for name, seed in (('a', 10), ('b', 11)):
    folder = tmp_path / name
    folder.mkdir()
    for i, image in enumerate(_images(6, 64, seed)):
      Image.fromarray(image).save(folder / f'{i:02d}.png')
    files = sorted(str(p) for p in folder.iterdir())
    with one_torch_thread():
      theirs.append(fid_score.calculate_activation_statistics(files, reference.model,
                                                              batch_size=6, num_workers=0))
    ours.append(image_folder.compute_stats(str(folder), extractor))
  for stats, (mu, sigma) in zip(ours, theirs):
    assert stats.num == 6
    assert rel_err(stats.mu, mu) <= RTOL
    assert rel_err(stats.sigma, sigma) <= RTOL
  d = 4
  fid_ours = metrics.frechet_distance(ours[0].mu[:d], ours[0].sigma[:d, :d],
                                      ours[1].mu[:d], ours[1].sigma[:d, :d])
  fid_theirs = fid_score.calculate_frechet_distance(
      theirs[0][0][:d], theirs[0][1][:d, :d], theirs[1][0][:d], theirs[1][1][:d, :d])
  assert fid_theirs > 1e-3
  print(f'FID parity: mu {max(rel_err(s.mu, t[0]) for s, t in zip(ours, theirs)):.1e}, '
        f'sigma {max(rel_err(s.sigma, t[1]) for s, t in zip(ours, theirs)):.1e}, '
        f'FID[:{d}] {fid_ours:.6f} vs {fid_theirs:.6f}')
  assert fid_ours == pytest.approx(fid_theirs, rel=1e-3)
