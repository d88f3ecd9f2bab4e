"""Host-local batches in the train step's layout.

Layout: images (num_d_steps, num_accumulations, per_host_micro_batch, R, R, 3)
float32 in [-1, 1] and labels (num_d_steps, num_accumulations,
per_host_micro_batch) int32: one fresh real batch per D step. Each host
produces its own share of the global batch. `create(config, start_step)`
starts the stream at iteration `start_step` (train.py passes the checkpoint's
data position), and the stream is a pure function of (config, start_step,
process_index, process_count), so a resumed run sees exactly the batches an
uninterrupted one would have seen.

Datasets (config.dataset.name):
- 'fake': synthetic class-conditional data (a per-class colour and stripe
  pattern plus noise) for tests and benchmarks.
- 'image_folder': users' own images in the layout of
  tfds.folder_dataset.ImageFolder, dataset.data_dir/split/label/image.{jpg,png};
  the labels are the sorted class folder names over all splits (ImageFolder's
  convention). The files are listed here rather than read through
  ImageFolder.as_dataset, which reads every file of the split in one fixed
  order and ignores TFDS's sharding options: listing the paths lets each host
  read only its own images and lets the position be computed instead of
  replayed (below).
- 'digits': scikit-learn's bundled handwritten digits (load_digits: 1,797
  8x8 images, 10 classes, no download), upsampled to model.resolution and
  written once as PNGs in the 'image_folder' layout under dataset.data_dir
  (None: ~/.cache/biggan_jax/digits), split 'train' / 'test' (1,500 / 297,
  stratified, fixed seed; see `write_digits`), then read exactly as a user's
  image folder is.
- any other name: a TFDS dataset prepared under dataset.data_dir (TFDS's
  default ~/tensorflow_datasets when None), e.g. 'imagenet2012', 'cifar10'.
  Nothing is ever downloaded: an unprepared dataset stops the run with the
  `tfds build` command to run, and for manual datasets (imagenet2012) the
  folder the archives go in, TFDS's manual_dir <data_dir>/downloads/manual/.

Preprocessing (BigGAN-PyTorch's CenterCropLongEdge + Resize): a centre crop to a
square on the short side (JPEGs decode only the crop window), resize to
model.resolution with antialiasing, an optional horizontal flip
(dataset.random_flip, deterministic per example), scale to [-1, 1]. The
default resize is 'bilinear' with antialias=True: a triangle filter stretched
by the downscaling factor, the filter PIL's BILINEAR applies when
BigGAN-PyTorch's torchvision `Resize` prepares ImageNet (so the images and the
Inception statistics match upstream's). 'area' (box filter, slightly softer)
and 'bicubic' (sharper, can ring) are dataset.resize_method options.

Position, sharding and resume:
- 'image_folder' is random access. Global example g of the stream (iteration
  s, D step d, micro-batch a, row r of the global micro-batch:
  g = ((s * num_d_steps + d) * num_accumulations + a) * micro_batch + r) is
  file index_shuffle(g % N, seed=(seed, g // N)) of the N listed files: a
  fresh full permutation every epoch, a pure function of (seed, g). Host i
  reads rows [i * n, (i + 1) * n) of every global micro-batch (the layout of
  sharding.host_to_global), so hosts read disjoint files and any number of
  hosts sees the 1-host batches. Resuming computes g from start_step: O(1),
  nothing is read or skipped.
- TFDS datasets are sequential TFRecord files. Host i of P reads its own
  even part of the split (tfds.split_for_jax_process(split, i, P)): n_i
  records, disjoint from the other hosts'. Epoch e of host i interleaves the
  part's files in an order seeded by (seed, i, e), then shuffles the records
  in a buffer of dataset.shuffle_buffer with the same seed, so every epoch
  is a fixed permutation of the part and the stream is a pure function of
  (seed, i, P). The host-local position k = start_step * (examples per host
  per iteration) is epoch k // n_i, offset k % n_i: the stream starts at that
  epoch and drops the offset with tf.data's `skip` on the serialised records,
  before any parsing or decoding. Resuming therefore costs reading (not
  decoding) at most one epoch of the host's share of the files: up to 1/P of
  ImageNet's ~140 GB, minutes on one host at disk speed, seconds on a pod.
- Prefetching: tf.data prefetches decoded batches (AUTOTUNE) on the host;
  train.py transfers the next batch to the devices during the current step.

Bad data: an image that cannot be read or decoded (truncated JPEG, a text file
named .jpg, an unreadable file) is skipped and counted, never fatal. Each
example keeps its slot in the stream, which is what keeps the position exact:
a skipped example's row is filled with another example of the same host
batch (the next readable row, cyclically), so a batch holds a few duplicates
rather than a shifted stream. `skipped_count()` returns the number skipped by
this process, and the log reports it (with the latest file) at most once a
minute.

Throughput: benchmarks/input_pipeline.py measures decoded, preprocessed
images/s from JPEG files.
"""

import contextlib
import dataclasses
import difflib
import itertools
import os

from absl import logging
from etils import epath
import jax
import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')  # What tfds.folder_dataset.ImageFolder reads.
_LOG_EVERY_S = 60


class DatasetError(ValueError):
  """A dataset that cannot be read; the message names the path or name."""


def per_host_micro_batch(config, process_count: int | None = None) -> int:
  micro = config.batch_size // config.num_accumulations
  return micro // (jax.process_count() if process_count is None else process_count)


def fake_batch(config, step: int, process_index: int, process_count: int | None = None) -> dict:
  """The host's rows of the global synthetic batch of `step`.

  The global batch depends on (seed, step) only, so any number of hosts sees
  the same data as one.
  """
  m = config.model
  micro = config.batch_size // config.num_accumulations
  shape = (config.num_d_steps, config.num_accumulations, micro)
  rng = np.random.default_rng([config.seed, step])
  labels = rng.integers(0, m.num_classes, shape)
  r = m.resolution
  grid = np.linspace(-1.0, 1.0, r, dtype=np.float32)
  phase = labels[..., None, None].astype(np.float32)
  stripes = np.sin(np.pi * (phase + 1) * grid[None, :])
  hue = np.stack([np.cos(phase + k * 2.1) for k in range(3)], -1)  # (..., 1, 1, 3)
  images = 0.6 * hue * stripes[..., None] + 0.1 * rng.standard_normal((*shape, r, r, 3))
  n = per_host_micro_batch(config, process_count)
  rows = slice(process_index * n, (process_index + 1) * n)
  return {'image': np.clip(images[:, :, rows], -1, 1).astype(np.float32),
          'label': labels[:, :, rows].astype(np.int32)}


# ---------------------------------------------------------------------------
# Skipped (unreadable) images.
# ---------------------------------------------------------------------------

_skipped = 0


def skipped_count() -> int:
  """Images this process skipped because they could not be read or decoded."""
  return _skipped


def _record_skipped(count: int, latest: str) -> None:
  global _skipped
  _skipped += count
  logging.log_every_n_seconds(
      logging.WARNING, 'input_pipeline: skipped %d unreadable images so far (latest: %s)',
      _LOG_EVERY_S, _skipped, latest)


# ---------------------------------------------------------------------------
# The digits demo's data: scikit-learn's digits as an image folder.
# ---------------------------------------------------------------------------

DIGITS_CACHE = os.path.join('~', '.cache', 'biggan_jax', 'digits')
DIGITS_TEST_SIZE = 297   # held out for digits_eval's classifier; 1,500 train.
DIGITS_SEED = 0


def digits_split():
  """(images (1797, 8, 8) float in [0, 16], labels, is_test): the fixed stratified split."""
  from sklearn import datasets, model_selection  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  _, test = model_selection.train_test_split(
      np.arange(len(digits.target)), test_size=DIGITS_TEST_SIZE,
      stratify=digits.target, random_state=DIGITS_SEED)
  is_test = np.zeros(len(digits.target), bool)
  is_test[test] = True
  return digits.images, digits.target, is_test


def upsample_digit(image, resolution: int) -> np.ndarray:
  """One 8x8 digit in [0, 16] -> uint8 (resolution, resolution) grey, as written to PNG."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pixels = Image.fromarray(np.uint8(np.round(image * 255.0 / 16.0)), 'L')
  return np.asarray(pixels.resize((resolution, resolution), Image.BICUBIC))


def digits_root(config) -> str:
  return os.path.expanduser(config.dataset.data_dir or DIGITS_CACHE)


def write_digits(root: str, resolution: int) -> str:
  """Writes root/{train,test}/<digit>/<index>.png once (8x8 -> resolution, bicubic).

  Ink is white on black, grey levels 0..16 scaled to 0..255. A folder that
  already holds both splits at this resolution is left as it is (the
  marker file records the resolution), so the PNGs are written once.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  marker = epath.Path(root) / 'DIGITS_RESOLUTION'
  if marker.exists() and marker.read_text().strip() == str(resolution):
    return root
  if marker.exists():
    raise DatasetError(
        f'{root}: holds digits at {marker.read_text().strip()}x{marker.read_text().strip()}, '
        f'not {resolution}x{resolution}; set --config.dataset.data_dir to another folder')
  images, labels, is_test = digits_split()
  for i, (image, label, test) in enumerate(zip(images, labels, is_test)):
    folder = epath.Path(root) / ('test' if test else 'train') / str(label)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(upsample_digit(image, resolution)).save(folder / f'{i:04d}.png')
  marker.write_text(str(resolution))
  return root


def _folder_root(config) -> str:
  """The image folder of 'image_folder' or 'digits' (written on first use)."""
  if config.dataset.name == 'digits':
    return write_digits(digits_root(config), config.model.resolution)
  return config.dataset.data_dir


# ---------------------------------------------------------------------------
# Sources: what config.dataset names, resolved without reading any image.
# ---------------------------------------------------------------------------


def _tf():
  """TensorFlow, for tf.data only: imported on first use, kept off the accelerators.

  check() never imports it (tensorflow_datasets' metadata and etils.epath
  need no TF): TF prints start-up lines on stderr that would spoil check()'s
  one-line errors.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  tf.config.set_visible_devices([], 'TPU')
  return tf


def _tfds():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


@dataclasses.dataclass(frozen=True)
class _Folder:
  """An ImageFolder split: every image path and its class index."""
  split_dir: str
  paths: tuple[str, ...]
  labels: tuple[int, ...]
  class_names: tuple[str, ...]


def _subdirs(path: str) -> list[str]:
  return sorted(p.name for p in epath.Path(path).iterdir() if p.is_dir())


_listed: dict[tuple[str, str], _Folder] = {}  # check()'s listing, for the create() after it


def _list_folder(root: str, split: str, reuse: bool = False) -> _Folder:
  """Lists root/split/label/*.{jpg,jpeg,png}.

  check() always lists; create() (reuse=True) takes the listing of the check()
  just before it, so train.py's check-then-create lists a large folder once.
  """
  if reuse and (root, split) in _listed:
    return _listed.pop((root, split))
  fix = 'point --config.dataset.data_dir at ROOT holding ROOT/SPLIT/LABEL/IMAGE.jpg'
  if not epath.Path(root).is_dir():
    raise DatasetError(f'dataset.data_dir={root!r}: no such directory; {fix}')
  splits = _subdirs(root)
  split_dir = os.path.join(root, split)
  if split not in splits:
    raise DatasetError(
        f'dataset.split={split!r}: no folder {split_dir}; ' +
        (f'the splits under {root} are {splits}: set --config.dataset.split to one of them'
         if splits else f'{root} holds no split folders: {fix}'))
  class_names = sorted({c for s in splits for c in _subdirs(os.path.join(root, s))})
  paths, labels = [], []
  for c in _subdirs(split_dir):
    files = sorted(p.name for p in epath.Path(split_dir, c).iterdir()
                   if p.name.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
      raise DatasetError(
          f'{os.path.join(split_dir, c)}: empty class folder (no '
          f'{"/".join(IMAGE_EXTENSIONS)} files); add its images or remove the folder')
    paths += [os.path.join(split_dir, c, f) for f in files]
    labels += [class_names.index(c)] * len(files)
  if not paths:
    raise DatasetError(f'{split_dir}: no class folders; {fix}')
  _listed.clear()
  _listed[root, split] = _Folder(split_dir, tuple(paths), tuple(labels), tuple(class_names))
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


def _tfds_builder(config):
  """The prepared TFDS builder of dataset.name, or a one-line DatasetError."""
  tfds = _tfds()
  name, data_dir = config.dataset.name, config.dataset.data_dir
  if data_dir is not None and not epath.Path(data_dir).is_dir():
    raise DatasetError(
        f'dataset.data_dir={data_dir!r}: no such directory; point it at the TFDS data_dir '
        f'that holds {name}/ (or leave it None for ~/tensorflow_datasets)')
  try:
    with _quiet_absl():
      builder = tfds.builder(name, data_dir=data_dir)
      prepared = builder.is_prepared()
  except tfds.core.registered.DatasetNotFoundError:
    close = difflib.get_close_matches(name, tfds.list_builders(with_community_datasets=False), 3)
    hint = f'did you mean {", ".join(map(repr, close))}? ' if close else ''
    raise DatasetError(
        f"dataset.name={name!r}: no TFDS dataset of that name; {hint}use a name from "
        "https://www.tensorflow.org/datasets/catalog, 'image_folder' or 'fake'") from None
  except Exception as e:  # pylint: disable=broad-except  # e.g. a bad config or version.
    raise DatasetError(f'dataset.name={name!r}: {str(e).splitlines()[0]}') from None
  if not prepared:
    root = str(builder.data_dir_root)
    build = f'`tfds build {name} --data_dir={root}`'
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
      manual_dir = os.path.join(root, 'downloads', 'manual')
      what = ' '.join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
      raise DatasetError(
          f'dataset.name={name!r}: not prepared in {builder.data_dir}; TFDS needs a manual '
          f'download: put the files in {manual_dir}/ ({what}) then run {build} once')
    raise DatasetError(
        f'dataset.name={name!r}: not prepared in {builder.data_dir}; run {build} once '
        '(biggan_jax never downloads), or set --config.dataset.data_dir to where it is')
  return builder


def _tfds_keys(builder) -> tuple[str, str]:
  keys = builder.info.supervised_keys
  if keys and all(isinstance(k, str) for k in keys):
    return keys
  return 'image', 'label'


def _check_tfds(config, builder) -> int:
  """Checks split and features; returns the number of classes."""
  tfds = _tfds()
  name, split = config.dataset.name, config.dataset.split
  try:
    num_examples = builder.info.splits[split].num_examples
  except (KeyError, ValueError, AssertionError) as e:
    raise DatasetError(
        f'dataset.split={split!r}: not a split of {name} in {builder.data_dir} '
        f'({str(e).splitlines()[0] if str(e) else "unknown split"}); its splits are '
        f'{sorted(builder.info.splits)}') from None
  if not num_examples:
    raise DatasetError(f'dataset.split={split!r}: {name} in {builder.data_dir} has no '
                       'examples in that split')
  image_key, label_key = _tfds_keys(builder)
  features = builder.info.features
  if not (image_key in features and isinstance(features[image_key], tfds.features.Image)
          and label_key in features
          and isinstance(features[label_key], tfds.features.ClassLabel)):
    raise DatasetError(
        f'dataset.name={name!r}: needs an Image feature {image_key!r} and a ClassLabel '
        f'{label_key!r} (class-conditional images); it has {sorted(features)}')
  if builder.info.file_format.value != 'tfrecord':
    raise DatasetError(
        f'dataset.name={name!r}: prepared as {builder.info.file_format.value} in '
        f'{builder.data_dir}; biggan_jax reads TFRecord files: rebuild with '
        f'`tfds build {name} --file_format=tfrecord`')
  return features[label_key].num_classes


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
      raise DatasetError("dataset.name='image_folder' needs dataset.data_dir: set "
                         '--config.dataset.data_dir=ROOT holding ROOT/SPLIT/LABEL/IMAGE.jpg')
    root = _folder_root(config)
    num_classes = len(_list_folder(root, d.split).class_names)
    where = f'{root} has {num_classes} class folders'
  else:
    num_classes = _check_tfds(config, _tfds_builder(config))
    where = f'{d.name} has {num_classes} classes'
  if num_classes > config.model.num_classes:  # fewer is fine: a subset of the classes
    raise DatasetError(f'model.num_classes={config.model.num_classes}: {where}; set '
                       f'--config.model.num_classes={num_classes}')


# ---------------------------------------------------------------------------
# Preprocessing.
# ---------------------------------------------------------------------------


def decode_and_crop(encoded):
  """Encoded JPEG/PNG/GIF/BMP -> uint8 (s, s, 3): the centre square on the short side.

  JPEGs decode only the crop window (tf.io.decode_and_crop_jpeg). Raises
  InvalidArgumentError on data that is not a readable image.
  """
  tf = _tf()

  def window(h, w):
    s = tf.minimum(h, w)
    return (h - s) // 2, (w - s) // 2, s

  def jpeg():
    shape = tf.io.extract_jpeg_shape(encoded)
    top, left, s = window(shape[0], shape[1])
    return tf.io.decode_and_crop_jpeg(encoded, tf.stack([top, left, s, s]), channels=3)

  def other():
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    shape = tf.shape(image)
    top, left, s = window(shape[0], shape[1])
    return image[top:top + s, left:left + s]

  return tf.cond(tf.io.is_jpeg(encoded), jpeg, other)


def preprocess(encoded, resolution: int, resize_method: str = 'bilinear',
               flip_seed=None):
  """Encoded image -> float32 (resolution, resolution, 3) in [-1, 1].

  Centre crop on the short side, antialiased resize (skipped when the crop is
  already resolution x resolution, so such images pass through exactly), a
  horizontal flip with probability 1/2 when `flip_seed` (a stateless [2] seed)
  is given.
  """
  tf = _tf()
  image = decode_and_crop(encoded)
  image = tf.cond(
      tf.reduce_all(tf.shape(image)[:2] == resolution),
      lambda: tf.cast(image, tf.float32),
      lambda: tf.image.resize(image, [resolution, resolution], method=resize_method,
                              antialias=True))
  image = tf.ensure_shape(image, [resolution, resolution, 3])
  if flip_seed is not None:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)


def _preprocess_or_skip(config, read_file: bool):
  """Element -> exactly one element: the preprocessed image, or a placeholder.

  tf.data cannot catch an error inside a map, so each example runs in its own
  one-element dataset with ignore_errors(), followed by a placeholder marked
  valid=False; take(1) keeps whichever comes first. Slots never disappear.
  """
  tf = _tf()
  r = config.model.resolution
  method, flip = config.dataset.resize_method, config.dataset.random_flip

  def load(ex):
    encoded = tf.io.read_file(ex['source']) if read_file else ex['encoded']
    image = preprocess(encoded, r, method, ex['flip_seed'] if flip else None)
    return {'image': image, 'label': ex['label'], 'valid': True, 'source': ex['source']}

  def one(ex):
    placeholder = {'image': tf.zeros([r, r, 3]), 'label': ex['label'], 'valid': False,
                   'source': ex['source']}
    good = tf.data.Dataset.from_tensors(ex).map(load).ignore_errors()
    return good.concatenate(tf.data.Dataset.from_tensors(placeholder)).take(1)

  return one


# ---------------------------------------------------------------------------
# Streams.
# ---------------------------------------------------------------------------


def _layout(config, process_count: int) -> tuple[int, int, int]:
  """(examples per host per iteration, per-host micro-batch, global micro-batch)."""
  n = per_host_micro_batch(config, process_count)
  micro = config.batch_size // config.num_accumulations
  return config.num_d_steps * config.num_accumulations * n, n, micro


def _folder_examples(config, folder: _Folder, start_step, process_index, process_count):
  """Host-local examples {'source': path, 'label', 'flip_seed'} from `start_step` on."""
  tf = _tf()
  per_host, n, micro = _layout(config, process_count)
  num_files = len(folder.paths)
  paths = tf.constant(folder.paths)
  labels = tf.constant(folder.labels, tf.int32)
  seed = tf.constant(config.seed, tf.int64)

  def example(k):  # host-local index k -> global stream position g -> file
    step, rest = k // per_host, k % per_host
    g = (step * (per_host // n) + rest // n) * micro + process_index * n + rest % n
    i = tf.random.experimental.index_shuffle(g % num_files, tf.stack([seed, g // num_files]),
                                             tf.constant(num_files - 1, tf.int64))
    return {'source': tf.gather(paths, i), 'label': tf.gather(labels, i),
            'flip_seed': tf.stack([seed + 1, g])}

  return tf.data.Dataset.range(start_step * per_host, np.iinfo(np.int64).max).map(example)


def _tfds_examples(config, builder, start_step, process_index, process_count):
  """Host-local examples {'encoded', 'label', 'source', 'flip_seed'} from `start_step` on."""
  tfds, tf = _tfds(), _tf()
  d = config.dataset
  per_host, _, _ = _layout(config, process_count)
  host_split = tfds.split_for_jax_process(d.split, process_index=process_index,
                                          process_count=process_count)
  instructions = builder.info.splits[host_split].file_instructions
  size = sum(f.take for f in instructions)
  if not size:
    raise DatasetError(f'dataset.split={d.split!r}: {d.name} has fewer examples than the '
                       f'{process_count} hosts reading it')
  files = tf.constant([os.fspath(f.filename) for f in instructions])
  skips = tf.constant([f.skip for f in instructions], tf.int64)
  takes = tf.constant([f.take for f in instructions], tf.int64)
  num_files = len(instructions)
  seed = tf.constant(config.seed, tf.int64)

  def read(j):
    records = tf.data.TFRecordDataset(files[j]).skip(skips[j]).take(takes[j])
    return records.enumerate(skips[j]).map(
        lambda i, r: (r, tf.strings.join([files[j], tf.strings.as_string(i)], ':')))

  def epoch(e):
    epoch_seed = tf.random.stateless_uniform(
        [], tf.stack([seed, e * process_count + process_index]), minval=None, maxval=None,
        dtype=tf.int64)
    order = tf.data.Dataset.range(num_files).map(
        lambda i: tf.random.experimental.index_shuffle(
            i, tf.stack([epoch_seed, seed]), tf.constant(num_files - 1, tf.int64)))
    records = order.interleave(read, cycle_length=min(num_files, 16), block_length=1,
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return records.shuffle(d.shuffle_buffer, seed=epoch_seed)

  image_key, label_key = _tfds_keys(builder)
  decoders = {image_key: tfds.decode.SkipDecoding()}
  start = start_step * per_host

  def parse(k, record):
    serialized, source = record
    ex = builder.info.features.deserialize_example(serialized, decoders=decoders)
    return {'encoded': ex[image_key], 'label': tf.cast(ex[label_key], tf.int32),
            'source': source,
            'flip_seed': tf.stack([seed + 1, k * process_count + process_index])}

  records = tf.data.Dataset.range(start // size, np.iinfo(np.int64).max).flat_map(epoch)
  return records.skip(start % size).enumerate(start).map(
      parse, num_parallel_calls=tf.data.AUTOTUNE)


def _fill_skipped(image, label, valid, last_good):
  """Overwrites rows marked invalid with the next valid row (cyclically), in place.

  image (B, R, R, 3) and label (B,) are the host batch flattened over
  (num_d_steps, num_accumulations, rows); a batch with no readable image takes
  the last readable image of the previous batches.
  """
  good, bad = np.flatnonzero(valid), np.flatnonzero(~valid)
  if len(good):
    source = good[np.searchsorted(good, bad) % len(good)]
    image[bad], label[bad] = image[source], label[source]
  else:
    image[:], label[:] = last_good


def create(config, start_step: int, *, process_index: int | None = None,
           process_count: int | None = None):
  """Iterator of host-local batches, the first one that of iteration `start_step`.

  process_index / process_count default to jax's; pass them to build another
  host's stream (tests simulate two hosts this way).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  check(config)
  d = config.dataset
  if d.name == 'fake':
    return (fake_batch(config, step, process_index, process_count)
            for step in itertools.count(start_step))

  tf = _tf()
  if d.name in ('image_folder', 'digits'):
    folder = _list_folder(_folder_root(config), d.split, reuse=True)
    examples = _folder_examples(config, folder, start_step, process_index, process_count)
    read_file = True
  else:
    examples = _tfds_examples(config, _tfds_builder(config), start_step, process_index,
                              process_count)
    read_file = False
  per_host, n, _ = _layout(config, process_count)
  r = config.model.resolution
  lead = [config.num_d_steps, config.num_accumulations, n]
  ds = examples.interleave(_preprocess_or_skip(config, read_file), cycle_length=None,
                           block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=True)
  ds = ds.batch(per_host, drop_remainder=True).map(
      lambda b: {'image': tf.reshape(b['image'], lead + [r, r, 3]),
                 'label': tf.reshape(b['label'], lead), 'valid': b['valid'],
                 'source': b['source']})
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options).prefetch(tf.data.AUTOTUNE)
  return _batches(ds)


def _batches(ds):
  """tf.data batches -> numpy batches in the step's layout, skipped rows filled."""
  last_good = None
  for b in ds.as_numpy_iterator():
    image, label, valid = b['image'], b['label'], b['valid']
    if not valid.all():
      bad = np.flatnonzero(~valid)
      _record_skipped(len(bad), b['source'][bad[-1]].decode())
      if last_good is None and len(bad) == len(valid):
        raise DatasetError(f'none of the {len(valid)} images of the first batch could be '
                           f'read (e.g. {b["source"][0].decode()}); check the files')
      image, label = image.copy(), label.copy()
      _fill_skipped(image.reshape(-1, *image.shape[3:]), label.reshape(-1), valid, last_good)
    last_good = image.reshape(-1, *image.shape[3:])[-1].copy(), label.reshape(-1)[-1]
    yield {'image': image, 'label': label}
