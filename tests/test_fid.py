"""python -m biggan_jax.fid: image folders and stats files in, `FID: <value>` out.

The Inception holds random weights (inception_fixture.random_state_dict) saved
with torch.save as pytorch-fid's file would be; the folder-vs-folder FID (the
one 2048-d sqrtm here, ~10 s on 2 cores) is checked against a closed form.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from threadpoolctl import threadpool_limits  # scikit-learn's dependency

from biggan_jax import fid as fid_cli
from biggan_jax.evaluation import stats as stats_lib
from inception_fixture import images as _images, random_state_dict, save_pth
from paths import REPO



@pytest.fixture(scope='module')
def weights(tmp_path_factory):
  pytest.importorskip('torch')
  path = tmp_path_factory.mktemp('weights') / 'random_inception.pth'
  save_pth(random_state_dict(seed=1), path)
  return str(path)


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
  """a: 4 images in two class folders; b: 3 flat images of another size."""
  root = tmp_path_factory.mktemp('images')
  for i, image in enumerate(_images(4, 32, seed=20)):
    os.makedirs(root / 'a' / f'class{i % 2}', exist_ok=True)
    Image.fromarray(image).save(root / 'a' / f'class{i % 2}' / f'{i}.png')
  os.makedirs(root / 'b')
  for i, image in enumerate(_images(3, 40, seed=21)):
    Image.fromarray(image).save(root / 'b' / f'{i}.jpg', quality=95)
  return str(root / 'a'), str(root / 'b')


def run(argv, capsys):
  rc = fid_cli.main(['fid', *argv])
  out, err = capsys.readouterr()
  return rc, out.strip().splitlines(), err.strip().splitlines()


def _svd_fid(a: np.ndarray, b: np.ndarray) -> float:
  """FID of two feature sets via Tr sqrt(S1 S2) = sum sv(A1 A2^T) / sqrt((n1-1)(n2-1)).

  A = centred features; exact for the rank-deficient covariances of a few images.
  """
  a, b = a.astype(np.float64), b.astype(np.float64)
  a1, b1 = a - a.mean(0), b - b.mean(0)
  tr_sqrt = np.linalg.svd(a1 @ b1.T, compute_uv=False).sum() / np.sqrt(
      (len(a) - 1) * (len(b) - 1))
  diff = a.mean(0) - b.mean(0)
  return float(diff @ diff + np.trace(np.cov(a, rowvar=False)) +
               np.trace(np.cov(b, rowvar=False)) - 2 * tr_sqrt)


def test_save_stats_then_fid(weights, folders, tmp_path, capsys):
  a, b = folders
  stats_a = str(tmp_path / 'a.npz')
  rc, out, err = run([f'--save_stats={stats_a}', f'--weights={weights}', '--batch_size=3', a],
                     capsys)
  assert (rc, err) == (0, [])
  assert out == [f'{a}: 4 images', f'wrote {stats_a}: statistics of {a}']
  saved = stats_lib.load_stats(stats_a)
  assert saved.num == 4 and saved.features.shape == (4, 2048)
  np.testing.assert_array_equal(saved.labels, [0, 0, 1, 1])  # class0/{0,2}, class1/{1,3}
  assert saved.meta['weights'] == 'random_inception.pth' and saved.meta['source'] == a
  assert 0.05 < saved.mu.mean() < 20  # informative random features

  stats_b = str(tmp_path / 'b.npz')
  with threadpool_limits(1):  # sqrtm's 2 BLAS threads run ~2x slower than 1 on busy cores.
    rc, out, err = run([b, stats_a, f'--weights={weights}', f'--save_stats={stats_b}'],
                       capsys)
  assert (rc, err) == (0, [])
  assert out[:3] == [f'{stats_a}: statistics of 4 images', f'{b}: 3 images',
                     f'wrote {stats_b}: statistics of {b}']
  assert out[-1].startswith('FID: ')
  value = float(out[-1][len('FID: '):])
  expected = _svd_fid(stats_lib.load_stats(stats_b).features, saved.features)
  assert expected > 0.1
  assert value == pytest.approx(expected, rel=1e-4)


def test_fid_of_two_stats_files_and_pytorch_fid_files(tmp_path, capsys):
  rng = np.random.default_rng(0)
  sigma = np.cov(rng.normal(size=(50, 8)), rowvar=False)
  np.savez_compressed(tmp_path / 'theirs.npz', mu=np.zeros(8), sigma=sigma)  # pytorch-fid's
  stats = stats_lib.FeatureStats.from_moments(np.full(8, 0.5), sigma, num=50)
  stats_lib.save_stats(str(tmp_path / 'ours.npz'), stats)
  rc, out, _ = run([str(tmp_path / 'theirs.npz'), str(tmp_path / 'ours.npz')], capsys)
  assert rc == 0 and out[0].endswith('statistics of ? images')
  assert out[1].endswith('statistics of 50 images')
  assert float(out[-1].split('FID: ')[1]) == pytest.approx(8 * 0.25, rel=1e-9)


def test_errors_are_one_line_exit_2(weights, folders, tmp_path, capsys):
  a, b = folders
  small = tmp_path / 'small.npz'
  np.savez(small, mu=np.zeros(4), sigma=np.eye(4))
  big = tmp_path / 'big.npz'
  np.savez(big, mu=np.zeros(8), sigma=np.eye(8))
  garbage = tmp_path / 'garbage.npz'
  garbage.write_bytes(b'nope')
  text = tmp_path / 'notes.txt'
  text.write_text('x')
  existing = tmp_path / 'existing.npz'
  existing.write_bytes(b'keep me')
  one = tmp_path / 'one'
  one.mkdir()
  Image.fromarray(_images(1, 16, 0)[0]).save(one / 'x.png')
  cases = [
      ([], 'got 0 paths'),
      ([a], 'got 1 paths'),
      ([a, b, a], 'got 3 paths'),
      ([a, str(tmp_path / 'missing')], 'missing: no such file or directory'),
      ([a, str(text)], 'notes.txt: neither an image folder nor a statistics .npz'),
      ([a, str(garbage)], 'garbage.npz: cannot read it as a stats .npz'),
      ([str(small), str(big)], 'holds 4-d statistics, .* 8-d'),
      ([a, b, '--batch_size=0'], '--batch_size=0: must be >= 1'),
      ([a, '--save_stats=out.txt'], 'must end in .npz'),
      ([a, f'--save_stats={existing}'], 'exists; pass --overwrite'),
      ([str(small), a, f'--save_stats={tmp_path / "new.npz"}'], 'PATH_A must be an image'),
      ([a, b, f'--weights={tmp_path / "missing.pth"}'], 'missing.pth: no such file'),
      ([a, b, f'--weights={text}'], 'notes.txt: cannot read it as a PyTorch state dict'),
      ([str(one), str(small), f'--weights={weights}'], 'one: 1 .png/.jpg/.jpeg images; the'),
      ([a, b, '--no_such_flag'], 'no_such_flag'),
  ]
  for argv, why in cases:
    rc, out, err = run(argv, capsys)
    assert rc == 2, argv
    assert out == [] and len(err) == 1 and err[0].startswith('error: '), (argv, err)
    assert re.search(why, err[0]), (why, err[0])
  assert existing.read_bytes() == b'keep me' and not (tmp_path / 'new.npz').exists()


def test_module_entry_point(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'biggan_jax.fid', str(tmp_path / 'x'),
                           str(tmp_path / 'y')], capture_output=True, text=True, check=False,
                          cwd=REPO)
  assert result.returncode == 2 and result.stdout == ''
  assert result.stderr.strip() == f'error: {tmp_path / "x"}: no such file or directory'
  result = subprocess.run([sys.executable, '-m', 'biggan_jax.fid', '--help'],
                          capture_output=True, text=True, check=False, cwd=REPO)
  assert result.returncode == 0 and 'FID: <value>' in result.stdout


def test_kid_and_the_resize_a_statistics_file_records(tmp_path, capsys):
  from biggan_jax.evaluation import metrics
  rng = np.random.default_rng(1)
  paths = []
  for i, shift in enumerate((0.0, 0.3)):
    stats = stats_lib.FeatureStats(max_features=100)
    stats.update(np.maximum(rng.normal(shift, 1, (60, 8)), 0))
    paths.append(str(tmp_path / f's{i}.npz'))
    stats_lib.save_stats(paths[-1], stats, {'resize': 'clean'})
  rc, out, err = run([*paths, '--kid', '--resize=clean'], capsys)
  assert (rc, err) == (0, [])
  mean, std, m = metrics.kernel_inception_distance(stats_lib.load_stats(paths[0]),
                                                   stats_lib.load_stats(paths[1]))
  assert m == 60 and out[-2] == f'KID: {mean} ± {std} (100 subsets of 60)'
  assert out[-1].startswith('FID: ')
  np.savez(tmp_path / 'theirs.npz', mu=np.zeros(8), sigma=np.eye(8))
  for argv, why in (([*paths], "s0.npz holds statistics of 'clean'-resized images but these "
                                "use 'pytorch-fid'"),
                    ([str(tmp_path / 'theirs.npz'), paths[1], '--kid'],
                     'theirs.npz keeps no features')):
    rc, out, err = run(argv, capsys)
    assert rc == 2 and out == [] and len(err) == 1 and why in err[0], err
