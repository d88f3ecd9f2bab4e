"""The analysis tools: truncation sweep, interpolation sheets, nearest neighbours (in
pixel space and in the FID Inception's space, random weights), the D overfitting plot."""

import json

import jax
import numpy as np
import pytest
from flax import traverse_util
from PIL import Image

import biggan_jax
from biggan_jax import analysis, models
from biggan_jax import config as config_lib
from biggan_jax.checkpoints import converted as checkpoint_dir
from biggan_jax.evaluation import paper_figures
from biggan_jax.evaluation import extractor as extractor_lib
from biggan_jax.evaluation import image_folder, inception, protocol
from biggan_jax.evaluation import stats as stats_lib
from biggan_jax.training import plots
from biggan_jax.utils import images as images_lib
from paths import REPO
from stand_in_extractor import ProjectionExtractor

R = 16


def random_inception_variables(seed=0):
  """He-initialised FID Inception weights (identity BN): O(1) features, no download."""
  rng = np.random.default_rng(seed)
  flat = {}
  for key, leaf in traverse_util.flatten_dict(inception.expected_variables()).items():
    shape = leaf.shape
    if key[-1] == 'kernel':
      fan_in = int(np.prod(shape[:-1]))
      value = rng.normal(0, np.sqrt((2 if len(shape) == 4 else 1) / fan_in), shape)
    elif key[-1] in ('scale', 'var'):
      value = np.ones(shape)
    else:
      value = np.zeros(shape)
    flat[key] = value.astype(np.float32)
  return traverse_util.unflatten_dict(flat)


@pytest.fixture(scope='module')
def inception_extractor():
  return extractor_lib.FeatureExtractor(random_inception_variables(), batch_size=8,
                                    devices=jax.devices()[:1])


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  """A randomly initialised tiny G at 16x16, as a converted checkpoint directory."""
  config = config_lib.from_file(REPO / 'configs' / 'tiny.py')
  m = config.model
  m.resolution, m.g_attn, m.d_attn = R, '', ''
  generator = models.create_generator(m)
  variables = jax.jit(lambda k: generator.init(k, np.zeros((1, m.dim_z), np.float32),
                                              np.zeros((1,), np.int32), train=False))(
                                                  jax.random.PRNGKey(0))
  path = tmp_path_factory.mktemp('ckpt') / 'tiny'
  checkpoint_dir.save(path, {'model': m.to_dict(), 'truncation_convention': 'paper',
                             'source': 'random init'}, jax.device_get(variables))
  return path


@pytest.fixture(scope='module')
def sampler(checkpoint):
  return biggan_jax.load_generator(checkpoint)


def write_png(path, image):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(path)


def brute_force_order(queries, candidates):
  d = ((queries[:, None].astype(np.float64) - candidates[None].astype(np.float64)) ** 2).sum(
      axis=tuple(range(2, queries.ndim + 1)))
  return np.argsort(d, axis=1, kind='stable'), np.sqrt(d)


# ------------------------------------------------------ nearest neighbours

def test_nearest_neighbours_are_truly_nearest(tmp_path, inception_extractor):
  """Each sample is planted in the training set: it must come first, at distance 0,
  and the rest must be in the brute-force order, streamed 4 images at a time."""
  rng = np.random.default_rng(0)
  samples = rng.integers(0, 256, (2, R, R, 3), dtype=np.uint8)
  others = rng.integers(0, 256, (9, R, R, 3), dtype=np.uint8)
  others[3] = np.clip(samples[1].astype(int) + 8, 0, 255)  # a near copy of sample 1
  train_set = np.concatenate([others[:5], samples[1:], others[5:], samples[:1]])
  for i, image in enumerate(train_set):
    write_png(tmp_path / 'train' / f'{i % 3}' / f'{i:02d}.png', image)
  files = image_folder.list_images(str(tmp_path / 'train'))[0]
  stream = np.stack([np.asarray(Image.open(f)) for f in files])  # the folder's order

  result = paper_figures.nearest_neighbours(
      samples, image_folder.folder_batches(str(tmp_path / 'train'), R, 4), k=4,
      extractor=inception_extractor)
  planted = [next(i for i, x in enumerate(stream) if (x == s).all()) for s in samples]

  order, dist = brute_force_order(paper_figures._pixels(samples), paper_figures._pixels(stream))
  pixel = result['pixel']
  np.testing.assert_array_equal(pixel['indices'], order[:, :4])
  np.testing.assert_allclose(pixel['distances'], np.take_along_axis(dist, order[:, :4], 1),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(pixel['indices'][:, 0], planted)
  assert (pixel['distances'][:, 0] < 1e-6).all() and (pixel['distances'][:, 1] > 1).all()
  np.testing.assert_array_equal(pixel['images'], stream[pixel['indices']])
  assert pixel['indices'][1, 1] == next(i for i, x in enumerate(stream)
                                        if (x == others[3]).all())

  features = inception_extractor(stream)['pool']
  assert features.std(axis=0).mean() > 1e-3  # random weights, informative features
  order, dist = brute_force_order(inception_extractor(samples)['pool'], features)
  space = result['inception']
  np.testing.assert_array_equal(space['indices'], order[:, :4])
  np.testing.assert_array_equal(space['indices'][:, 0], planted)
  assert (space['distances'][:, 0] < 1e-3 * space['distances'][:, 1]).all()


def test_nearest_neighbours_cli(sampler, checkpoint, tmp_path, inception_extractor, capsys,
                                monkeypatch):
  # The samples the CLI will draw (--num=2 --seed=5), planted among noise images.
  classes = paper_figures.random_classes(sampler.num_classes, 2, 5)
  samples = sampler.to_uint8(sampler.sample(classes, seed=5))
  rng = np.random.default_rng(1)
  for i in range(6):
    write_png(tmp_path / 'data' / f'noise{i}.png', rng.integers(0, 256, (R, R, 3), np.uint8))
  for i, s in enumerate(samples):
    write_png(tmp_path / 'data' / f'sample{i}.png', s)
  monkeypatch.setattr(protocol, 'make_extractor', lambda *a: inception_extractor)
  out = tmp_path / 'out'
  code = analysis.main(['analysis', 'nearest_neighbours', f'--checkpoint={checkpoint}',
                        f'--data={tmp_path / "data"}', '--num=2', '--k=3', '--seed=5',
                        '--batch_size=3', f'--output={out}'])
  _, err = capsys.readouterr()
  assert code == 0, err
  listing = json.loads((out / 'nearest_neighbours.json').read_text())
  assert listing['num_training_images'] == 8 and len(listing['samples']) == 2
  for i, row in enumerate(listing['samples']):
    assert row['class'] == classes[i]
    for space in ('pixel', 'inception'):
      assert len(row[space]) == 3
      assert row[space][0]['file'].endswith(f'sample{i}.png')
      distances = [n['distance'] for n in row[space]]
      assert distances == sorted(distances)
  for name in ('nearest_pixel.png', 'nearest_inception.png'):
    tiles = images_lib.grid_tiles(np.asarray(Image.open(out / name)), 2, 4, R)
    np.testing.assert_array_equal(tiles[0, 0], samples[0])  # column 0: the sample
    np.testing.assert_array_equal(tiles[0, 1], samples[0])  # then its copy
    np.testing.assert_array_equal(tiles[1, 1], samples[1])


# ------------------------------------------------- truncation sweep, sheets

def test_truncation_sweep_cli(checkpoint, tmp_path, capsys, monkeypatch):
  stats = stats_lib.FeatureStats(100)
  stats.update(ProjectionExtractor()(np.random.default_rng(0).uniform(
      -1, 1, (30, R, R, 3)).astype(np.float32))['pool'])
  stats_lib.save_stats(str(tmp_path / 'ref.npz'), stats)
  monkeypatch.setattr(protocol, 'make_extractor', lambda *a: ProjectionExtractor())
  out = tmp_path / 'sweep'
  args = ['analysis', 'truncation_sweep', f'--checkpoint={checkpoint}',
          f'--ref_stats={tmp_path / "ref.npz"}', '--truncations=2,0.5,none',
          '--num_samples=20', '--batch_size=10', f'--output={out}']
  code = analysis.main(args)
  stdout, err = capsys.readouterr()
  assert code == 0, err
  rows = [json.loads(l) for l in (out / 'truncation_sweep.jsonl').read_text().splitlines()]
  assert [r['truncation'] for r in rows] == [2.0, 0.5, None]
  for r in rows:
    assert set(paper_figures.SWEEP_KEYS) <= set(r)
    assert all(np.isfinite(r[k]) for k in ('is_mean', 'is_std', 'fid', 'precision', 'recall'))
  assert len({r['fid'] for r in rows}) == 3  # τ changes the samples
  assert Image.open(out / 'truncation_sweep.png').size[0] > 300
  assert 'best FID' in stdout
  code = analysis.main(args)
  assert code == 2 and 'exists' in capsys.readouterr().err


def test_interpolations_cli(checkpoint, sampler, tmp_path, capsys):
  out = tmp_path / 'interp'
  code = analysis.main(['analysis', 'interpolations', f'--checkpoint={checkpoint}',
                        '--labels=0,3,4', '--steps=5', '--truncation=1', f'--output={out}'])
  _, err = capsys.readouterr()
  assert code == 0, err
  z_sheet = np.asarray(Image.open(out / 'interpolation_z.png'))
  class_sheet = np.asarray(Image.open(out / 'interpolation_class.png'))
  assert z_sheet.shape == class_sheet.shape == images_lib.image_grid(
      np.zeros((15, R, R, 3)), 3).shape
  # Both sheets are what the Sampler's interpolations give.
  sheets = paper_figures.interpolations(sampler, [0, 3, 4], steps=5, truncation=1.0, seed=0)
  for sheet, images in ((z_sheet, sheets['z']), (class_sheet, sheets['class'])):
    tiles = images_lib.grid_tiles(sheet, 3, 5, R)
    np.testing.assert_array_equal(tiles, images_lib.to_uint8(images))
  # Row 2 of the class sheet goes from class 4 back to class 0, at one z.
  ends = sampler.sample([4, 0], z=np.repeat(sampler.draw_z(9, 1.0, 0)[8:], 2, 0))
  np.testing.assert_allclose(sheets['class'][2, [0, -1]], ends, atol=1e-5)


@pytest.mark.parametrize('args, message', [
    ([], 'give a command first'),
    (['sweep'], "not 'sweep'"),
    (['interpolations', '--checkpoint=X'], 'needs --output'),
    (['nearest_neighbours', '--checkpoint=X', '--output=Y'], 'needs --data'),
    (['interpolations', '--checkpoint=X', '--output=Y', '--ref_stats=Z'],
     '--ref_stats does not go with interpolations'),
    (['interpolations', '--checkpoint=X', '--output=Y', '--truncation=0'], 'truncation=0'),
    (['truncation_sweep', '--checkpoint=X', '--output=Y', '--ref_stats=Z',
      '--truncations=1,abc'], "'abc' is not a number"),
    (['interpolations', '--checkpoint=X', '--output=Y', '--steps=1'], '--steps=1'),
])
def test_cli_errors_are_one_line(args, message, tmp_path, capsys, monkeypatch, checkpoint):
  monkeypatch.chdir(tmp_path)
  args = [a.replace('--checkpoint=X', f'--checkpoint={checkpoint}') for a in args]
  code = analysis.main(['analysis', *args])
  err = capsys.readouterr().err
  assert code == 2
  assert err.startswith('error: ') and message in err and len(err.strip().splitlines()) == 1
  assert not (tmp_path / 'Y').exists()


# ------------------------------------------------------------- D overfitting

def test_plot_d_overfitting(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  path.write_text(''.join(json.dumps(r) + '\n' for r in [
      {'step': 1, 'g_loss': 1.0},
      {'step': 2, 'fid': 3.0, 'd_train': 0.5, 'd_heldout': 0.2, 'd_gap': 0.3},
      {'step': 4, 'fid': 2.0, 'd_train': 1.5, 'd_heldout': 0.1, 'd_gap': 1.4}]))
  assert plots.plot_d_overfitting(path, tmp_path / 'd_overfit.png')
  assert Image.open(tmp_path / 'd_overfit.png').size[0] > 500
  path.write_text(json.dumps({'step': 1, 'g_loss': 1.0}) + '\n')
  assert not plots.plot_d_overfitting(path, tmp_path / 'none.png')
  assert not (tmp_path / 'none.png').exists()
