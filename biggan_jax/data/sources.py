"""What config.dataset names, resolved and checked without reading any image.

- 'fake': synthetic data (data/fake.py); nothing to check.
- 'image_folder': users' own images in the layout of
  tfds.folder_dataset.ImageFolder, dataset.data_dir/split/label/image.{jpg,png};
  the labels are the sorted class folder names over all splits (ImageFolder's
  convention). The paths are listed here rather than read through
  ImageFolder.as_dataset, so that each host reads only its own images and the
  stream's position can be computed instead of replayed.
- 'digits': scikit-learn's digits written once as such a folder (data/digits.py).
- any other name: a TFDS dataset prepared under dataset.data_dir (TFDS's
  default ~/tensorflow_datasets when None). Nothing is ever downloaded: an
  unprepared dataset stops the run with the `tfds build` command to run, and
  for manual datasets (imagenet2012) the folder the archives go in.
"""

import contextlib
import dataclasses
import difflib
import os

from absl import logging
from etils import epath

from biggan_jax import data
from biggan_jax.data import digits
from biggan_jax.utils import extras

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')  # What tfds.folder_dataset.ImageFolder reads.


def import_tf():
  """TensorFlow, for tf.data only: imported on first use, kept off the accelerators.

  check() never imports it (tensorflow_datasets' metadata and etils.epath
  need no TF): TF prints start-up lines on stderr that would spoil check()'s
  one-line errors.
  """
  tf = extras.import_tensorflow()
  tf.config.set_visible_devices([], 'GPU')
  tf.config.set_visible_devices([], 'TPU')
  return tf


def import_tfds():
  import tensorflow_datasets as tfds
  return tfds


@dataclasses.dataclass(frozen=True)
class Folder:
  """An ImageFolder split: every image path and its class index."""
  split_dir: str
  paths: tuple[str, ...]
  labels: tuple[int, ...]
  class_names: tuple[str, ...]


def _subdirs(path: str) -> list[str]:
  return sorted(p.name for p in epath.Path(path).iterdir() if p.is_dir())


_listed: dict[tuple[str, str], Folder] = {}  # check()'s listing, for the create() after it


def list_folder(root: str, split: str, reuse: bool = False) -> Folder:
  """Lists root/split/label/*.{jpg,jpeg,png}.

  check() always lists; create() (reuse=True) takes the listing of the check()
  just before it, so train.py's check-then-create lists a large folder once.
  """
  if reuse and (root, split) in _listed:
    return _listed.pop((root, split))
  fix = 'point --config.dataset.data_dir at ROOT holding ROOT/SPLIT/LABEL/IMAGE.jpg'
  if not epath.Path(root).is_dir():
    raise data.DatasetError(f'dataset.data_dir={root!r}: no such directory; {fix}')
  splits = _subdirs(root)
  split_dir = os.path.join(root, split)
  if split not in splits:
    raise data.DatasetError(
        f'dataset.split={split!r}: no folder {split_dir}; ' +
        (f'the splits under {root} are {splits}: set --config.dataset.split to one of them'
         if splits else f'{root} holds no split folders: {fix}'))
  class_names = sorted({c for s in splits for c in _subdirs(os.path.join(root, s))})
  paths, labels = [], []
  for c in _subdirs(split_dir):
    files = sorted(p.name for p in epath.Path(split_dir, c).iterdir()
                   if p.name.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
      raise data.DatasetError(
          f'{os.path.join(split_dir, c)}: empty class folder (no '
          f'{"/".join(IMAGE_EXTENSIONS)} files); add its images or remove the folder')
    paths += [os.path.join(split_dir, c, f) for f in files]
    labels += [class_names.index(c)] * len(files)
  if not paths:
    raise data.DatasetError(f'{split_dir}: no class folders; {fix}')
  _listed.clear()
  _listed[root, split] = Folder(split_dir, tuple(paths), tuple(labels), tuple(class_names))
  return _listed[root, split]


@contextlib.contextmanager
def _quiet_absl():
  """Hides the INFO and WARNING lines tfds logs for each place it looked."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


def tfds_builder(config):
  """The prepared TFDS builder of dataset.name, or a one-line DatasetError."""
  tfds = import_tfds()
  name, data_dir = config.dataset.name, config.dataset.data_dir
  if data_dir is not None and not epath.Path(data_dir).is_dir():
    raise data.DatasetError(
        f'dataset.data_dir={data_dir!r}: no such directory; point it at the TFDS data_dir '
        f'that holds {name}/ (or leave it None for ~/tensorflow_datasets)')
  try:
    with _quiet_absl():
      builder = tfds.builder(name, data_dir=data_dir)
      prepared = builder.is_prepared()
  except tfds.core.registered.DatasetNotFoundError:
    close = difflib.get_close_matches(name, tfds.list_builders(with_community_datasets=False), 3)
    hint = f'did you mean {", ".join(map(repr, close))}? ' if close else ''
    raise data.DatasetError(
        f"dataset.name={name!r}: no TFDS dataset of that name; {hint}use a name from "
        "https://www.tensorflow.org/datasets/catalog, 'image_folder' or 'fake'") from None
  except Exception as e:  # e.g. a bad config or version.
    raise data.DatasetError(f'dataset.name={name!r}: {str(e).splitlines()[0]}') from None
  if not prepared:
    root = str(builder.data_dir_root)
    build = f'`tfds build {name} --data_dir={root}`'
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
      manual_dir = os.path.join(root, 'downloads', 'manual')
      what = ' '.join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
      raise data.DatasetError(
          f'dataset.name={name!r}: not prepared in {builder.data_dir}; TFDS needs a manual '
          f'download: put the files in {manual_dir}/ ({what}) then run {build} once')
    raise data.DatasetError(
        f'dataset.name={name!r}: not prepared in {builder.data_dir}; run {build} once '
        '(biggan_jax never downloads), or set --config.dataset.data_dir to where it is')
  return builder


def tfds_keys(builder) -> tuple[str, str]:
  keys = builder.info.supervised_keys
  if keys and all(isinstance(k, str) for k in keys):
    return keys
  return 'image', 'label'


def _check_tfds(config, builder) -> int:
  """Checks split and features; returns the number of classes."""
  tfds = import_tfds()
  name, split = config.dataset.name, config.dataset.split
  try:
    num_examples = builder.info.splits[split].num_examples
  except (KeyError, ValueError, AssertionError) as e:
    raise data.DatasetError(
        f'dataset.split={split!r}: not a split of {name} in {builder.data_dir} '
        f'({str(e).splitlines()[0] if str(e) else "unknown split"}); its splits are '
        f'{sorted(builder.info.splits)}') from None
  if not num_examples:
    raise data.DatasetError(f'dataset.split={split!r}: {name} in {builder.data_dir} has no '
                       'examples in that split')
  image_key, label_key = tfds_keys(builder)
  features = builder.info.features
  if not (image_key in features and isinstance(features[image_key], tfds.features.Image)
          and label_key in features
          and isinstance(features[label_key], tfds.features.ClassLabel)):
    raise data.DatasetError(
        f'dataset.name={name!r}: needs an Image feature {image_key!r} and a ClassLabel '
        f'{label_key!r} (class-conditional images); it has {sorted(features)}')
  if builder.info.file_format.value != 'tfrecord':
    raise data.DatasetError(
        f'dataset.name={name!r}: prepared as {builder.info.file_format.value} in '
        f'{builder.data_dir}; biggan_jax reads TFRecord files: rebuild with '
        f'`tfds build {name} --file_format=tfrecord`')
  return features[label_key].num_classes


def folder_root(config) -> str:
  """The image folder of 'image_folder' or 'digits' (written on first use)."""
  if config.dataset.name == 'digits':
    return digits.write_digits(digits.digits_root(config), config.model.resolution)
  return config.dataset.data_dir


def check(config) -> None:
  """Fails fast (before any model is built) on a dataset that cannot be read.

  Reads no image: lists an image folder, or opens a TFDS builder's metadata
  ('digits' writes its folder first, once).
  """
  d = config.dataset
  if d.name == 'fake':
    return
  if d.name in ('image_folder', 'digits'):
    if not d.data_dir and d.name == 'image_folder':
      raise data.DatasetError("dataset.name='image_folder' needs dataset.data_dir: set "
                         '--config.dataset.data_dir=ROOT holding ROOT/SPLIT/LABEL/IMAGE.jpg')
    root = folder_root(config)
    num_classes = len(list_folder(root, d.split).class_names)
    where = f'{root} has {num_classes} class folders'
  else:
    num_classes = _check_tfds(config, tfds_builder(config))
    where = f'{d.name} has {num_classes} classes'
  if num_classes > config.model.num_classes:  # fewer is fine: a subset of the classes
    raise data.DatasetError(f'model.num_classes={config.model.num_classes}: {where}; set '
                       f'--config.model.num_classes={num_classes}')
