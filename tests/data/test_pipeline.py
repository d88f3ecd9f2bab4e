"""Input pipelines on small generated datasets (no downloads): an ImageFolder
and a TFDS dataset built in the test; preprocessing numbers, bad files, errors,
resume position and sharding over 2 simulated hosts."""

import io
import itertools
import os

from etils import epath
import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from biggan_jax import config as config_lib
from biggan_jax import data
from biggan_jax.data import pipeline, preprocess, sources

R = 16
# Solid colours of the good images: far from the placeholder's grey.
COLOURS = {'ant': (250, 10, 10), 'bee': (10, 250, 10), 'cow': (10, 10, 250)}


def make_config(name='image_folder', data_dir=None, batch_size=4, num_classes=3, **dataset):
  c = config_lib.base_config()
  c.model.resolution = R
  c.model.num_classes = num_classes
  c.model.g_attn = c.model.d_attn = ''
  c.batch_size = batch_size
  c.num_d_steps = 2
  c.dataset.name = name
  c.dataset.data_dir = None if data_dir is None else str(data_dir)
  c.dataset.random_flip = False
  c.dataset.update(dataset)
  return c


def save(path, array, fmt=None, **kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(array, np.uint8)).save(path, fmt, **kwargs)


def solid(h, w, colour):
  return np.broadcast_to(np.array(colour, np.uint8), (h, w, 3))


def make_folder(root, per_class=3):
  """root/train/{ant,bee,cow}/i.png|jpg: solid colours, several sizes, some not square."""
  sizes = [(24, 40), (33, 21), (16, 16), (50, 50)]
  for c, colour in COLOURS.items():
    for i in range(per_class):
      h, w = sizes[i % len(sizes)]
      ext = 'jpg' if i % 2 else 'png'
      save(f'{root}/train/{c}/{i}.{ext}', solid(h, w, colour), quality=95)
  return root


def take(iterator, n):
  return list(itertools.islice(iterator, n))


def expected(colour):
  return np.array(colour, np.float32) / 127.5 - 1


def test_preprocess_centre_crop_resize_and_range():
  # A 24x40 image: the centre 24x24 square is red, the 8-px side margins blue.
  image = solid(24, 40, (255, 0, 0)).copy()
  image[:, :8] = image[:, -8:] = (0, 0, 255)
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, 'PNG')
  out = preprocess.preprocess(buf.getvalue(), R).numpy()
  assert out.shape == (R, R, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out, np.broadcast_to([1.0, -1.0, -1.0], out.shape), atol=1e-5)

  # Antialiased bilinear == PIL's BILINEAR (what BigGAN-PyTorch's Resize uses).
  rng = np.random.default_rng(0)
  noise = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(noise).save(buf, 'PNG')
  ours = (preprocess.preprocess(buf.getvalue(), R).numpy() + 1) * 127.5
  pil = np.asarray(Image.fromarray(noise[:, 15:75]).resize((R, R), Image.BILINEAR), np.float32)
  assert np.abs(ours - pil).max() <= 1.0   # PIL rounds to uint8
  assert np.abs(ours - pil).mean() < 0.3
  # A crop already R x R passes through exactly (no resampling).
  buf = io.BytesIO()
  Image.fromarray(noise[:R, :R + 6]).save(buf, 'PNG')
  np.testing.assert_array_equal(preprocess.preprocess(buf.getvalue(), R).numpy(),
                                noise[:R, 3:R + 3] / np.float32(127.5) - 1)


def test_image_folder_batches(tmp_path):
  root = make_folder(tmp_path)
  config = make_config(data_dir=root)
  sources.check(config)
  batches = take(pipeline.create(config, 0), 3)  # 8 examples each, 9 files
  for b in batches:
    assert b['image'].shape == (2, 1, 4, R, R, 3) and b['image'].dtype == np.float32
    assert b['label'].shape == (2, 1, 4) and b['label'].dtype == np.int32
    assert b['image'].min() >= -1 and b['image'].max() <= 1
    # Every image is its class's solid colour: labels are the sorted folder names.
    colours = np.array([expected(COLOURS[c]) for c in sorted(COLOURS)])
    want = colours[b['label']][..., None, None, :]
    np.testing.assert_allclose(b['image'], np.broadcast_to(want, b['image'].shape), atol=0.03)
  # Labels follow tfds.folder_dataset.ImageFolder's mapping.
  assert tfds.folder_dataset.ImageFolder(str(root)).info.features['label'].names == sorted(COLOURS)
  # One epoch = every file once: the first 9 examples hold each class 3 times.
  labels = np.concatenate([b['label'].reshape(-1) for b in batches])
  assert np.bincount(labels[:9], minlength=3).tolist() == [3, 3, 3]
  assert np.bincount(labels[9:18], minlength=3).tolist() == [3, 3, 3]


def test_random_flip_is_per_example_and_deterministic(tmp_path):
  image = solid(20, 20, (250, 10, 10)).copy()
  image[:, :10] = (10, 10, 250)  # left half blue, right half red
  for i in range(4):
    save(f'{tmp_path}/train/a/{i}.png', image)
  config = make_config(data_dir=tmp_path, num_classes=1, random_flip=True)
  first = np.concatenate([b['image'] for b in take(pipeline.create(config, 0), 4)])
  left_is_blue = first[..., 0, 0, 2] > 0  # (batch..., ) blue channel of the top-left pixel
  assert 0 < left_is_blue.mean() < 1   # both orientations occur
  again = np.concatenate([b['image'] for b in take(pipeline.create(config, 0), 4)])
  np.testing.assert_array_equal(first, again)


def test_resume_sees_the_same_stream(tmp_path):
  config = make_config(data_dir=make_folder(tmp_path), random_flip=True)
  uninterrupted = take(pipeline.create(config, 0), 6)
  resumed = take(pipeline.create(config, 3), 3)
  for a, b in zip(uninterrupted[3:], resumed):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['label'], b['label'])
  assert not np.array_equal(uninterrupted[0]['label'], uninterrupted[1]['label'])
  config.seed = 1  # another seed, another order
  other = take(pipeline.create(config, 0), 6)
  assert any(not np.array_equal(a['label'], b['label']) for a, b in zip(uninterrupted, other))


def test_two_hosts_split_the_global_batch(tmp_path):
  config = make_config(data_dir=make_folder(tmp_path, per_class=4), batch_size=4)
  one = take(pipeline.create(config, 0, process_index=0, process_count=1), 3)
  hosts = [take(pipeline.create(config, 0, process_index=i, process_count=2), 3)
           for i in range(2)]
  for step in range(3):
    h0, h1 = hosts[0][step], hosts[1][step]
    assert h0['image'].shape == (2, 1, 2, R, R, 3)
    for key in ('image', 'label'):  # host i holds rows [2i, 2i + 2) of every micro-batch
      np.testing.assert_array_equal(np.concatenate([h0[key], h1[key]], axis=2), one[step][key])


def test_corrupt_files_are_skipped_and_counted(tmp_path):
  root = make_folder(tmp_path, per_class=2)                   # 6 good images
  good = open(f'{root}/train/ant/1.jpg', 'rb').read()
  open(f'{root}/train/bee/truncated.jpg', 'wb').write(good[:len(good) // 2])
  open(f'{root}/train/cow/notes.jpg', 'w').write('not an image')
  config = make_config(data_dir=root)                         # 8 examples per batch = 8 files
  before = pipeline.skipped_count()
  batches = take(pipeline.create(config, 0), 3)
  assert pipeline.skipped_count() - before == 2 * 3    # both bad files, every epoch
  colours = np.array([expected(COLOURS[c]) for c in sorted(COLOURS)])
  for b in batches:  # their slots hold readable images of the batch, with their labels
    want = colours[b['label']][..., None, None, :]
    np.testing.assert_allclose(b['image'], np.broadcast_to(want, b['image'].shape), atol=0.03)


def test_fill_skipped_rows():
  image = np.arange(5, dtype=np.float32)[:, None] * np.ones((5, 2), np.float32)
  label = np.arange(5, dtype=np.int32)
  valid = np.array([True, False, True, False, False])
  pipeline._fill_skipped(image, label, valid, None)  # next valid row, cyclically
  assert label.tolist() == [0, 2, 2, 0, 0] and image[:, 0].tolist() == [0, 2, 2, 0, 0]
  pipeline._fill_skipped(image, label, np.zeros(5, bool), (np.full(2, 7.0), 3))
  assert label.tolist() == [3] * 5 and (image == 7).all()  # none valid: the last good one


def one_line_error(config, *paths):
  with pytest.raises(data.DatasetError) as error:
    sources.check(config)
  message = str(error.value)
  assert '\n' not in message
  for p in paths:
    assert str(p) in message, message
  return message


def test_folder_errors_name_the_path(tmp_path):
  root = make_folder(tmp_path / 'data', per_class=1)
  one_line_error(make_config(data_dir=tmp_path / 'nope'), tmp_path / 'nope')
  one_line_error(make_config(data_dir=root, split='validation'), root / 'validation', "'train'")
  # More classes on disk than the model has is an error; fewer (a subset) is fine.
  assert 'model.num_classes=2' in one_line_error(make_config(data_dir=root, num_classes=2),
                                                 root)
  sources.check(make_config(data_dir=root, num_classes=1000))
  os.makedirs(root / 'train' / 'dog')
  one_line_error(make_config(data_dir=root), root / 'train' / 'dog')


def test_config_validate_dataset_keys():
  config = make_config(batch_size=8)
  with pytest.raises(config_lib.ConfigError, match='dataset.data_dir=None'):
    config_lib.validate(config)
  config.dataset.data_dir = '/x'
  config.dataset.resize_method = 'nearest'
  with pytest.raises(config_lib.ConfigError, match="dataset.resize_method='nearest'"):
    config_lib.validate(config)


class BigganJaxTestImages(tfds.core.GeneratorBasedBuilder):
  """A TFDS dataset built locally: image i is solid grey 10 * i, label i % 3."""

  VERSION = tfds.core.Version('1.0.0')
  # pytest's importlib mode leaves this module outside any package, where TFDS's own lookup of the
  # builder's source folder reaches for the optional importlib_resources; say where it is instead.
  code_path = epath.Path(__file__)

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(None, None, 3)),
            'label': tfds.features.ClassLabel(names=['a', 'b', 'c'])}),
        supervised_keys=('image', 'label'))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(20), 'test': self._generate_examples(4)}

  def _generate_examples(self, n):
    for i in range(n):
      yield i, {'image': solid(12 + i % 3, 20, (10 * i,) * 3), 'label': i % 3}


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('tfds')
  BigganJaxTestImages(data_dir=str(data_dir)).download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False, num_shards=3))
  return data_dir


def ids(batch):
  """The image ids of a batch from BigganJaxTestImages, flattened."""
  return np.rint((batch['image'][..., 0, 0, 0].reshape(-1) + 1) * 12.75).astype(int)


def test_tfds_dataset_by_name(tfds_dir):
  config = make_config('biggan_jax_test_images', tfds_dir, shuffle_buffer=8)
  config.num_d_steps = 1
  sources.check(config)
  batches = take(pipeline.create(config, 0), 10)  # 4 examples each: 2 epochs of 20
  for b in batches:
    assert b['image'].shape == (1, 1, 4, R, R, 3) and b['label'].dtype == np.int32
    np.testing.assert_array_equal(b['label'].reshape(-1), ids(b) % 3)
  seen = np.concatenate([ids(b) for b in batches])
  assert sorted(seen[:20]) == list(range(20)) and sorted(seen[20:]) == list(range(20))
  assert not np.array_equal(seen[:20], seen[20:])   # reshuffled every epoch
  resumed = np.concatenate([ids(b) for b in take(pipeline.create(config, 7), 3)])
  np.testing.assert_array_equal(resumed, seen[28:])
  # Two hosts read disjoint halves; together one epoch each.
  hosts = [np.concatenate([ids(b) for b in take(
      pipeline.create(config, 0, process_index=i, process_count=2), 5)]) for i in range(2)]
  assert all(len(set(h)) == 10 for h in hosts)
  assert sorted(np.concatenate(hosts)) == list(range(20))


def test_tfds_errors(tfds_dir, tmp_path):
  one_line_error(make_config('nope'), "dataset.name='nope'")
  one_line_error(make_config('biggan_jax_test_images', tfds_dir, split='validation'),
                 "dataset.split='validation'", "'test', 'train'")
  one_line_error(make_config('biggan_jax_test_images', tmp_path / 'missing'),
                 tmp_path / 'missing')
  one_line_error(make_config('cifar10', tmp_path, num_classes=10),
                 f'tfds build cifar10 --data_dir={tmp_path}')
  message = one_line_error(make_config('imagenet2012', tmp_path, num_classes=1000),
                           tmp_path / 'downloads' / 'manual', 'ILSVRC2012_img_train.tar')
  assert not (tmp_path / 'imagenet2012').exists()  # nothing downloaded or prepared
