"""Host-local batches in the train step's layout (data/layout.py), resumable at any step.

`create(config, start_step)` starts the stream at iteration `start_step` (the
loop passes the checkpoint's data position). The stream is a pure function
of (config, start_step, process_index, process_count), so a resumed run sees
exactly the batches an uninterrupted one would have seen, and an image that
cannot be read is skipped, counted and replaced in its slot, never fatal.
docs/data.md describes the position arithmetic and the sharding.
"""

import itertools
import os

from absl import logging
import jax
import numpy as np

from biggan_jax import data
from biggan_jax.data import fake, layout, preprocess, sources

_LOG_EVERY_S = 60


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
# Streams.
# ---------------------------------------------------------------------------


def _folder_examples(config, folder: sources.Folder, start_step, process_index, process_count):
  """Host-local examples {'source': path, 'label', 'flip_seed'} from `start_step` on."""
  tf = sources.import_tf()
  per_host, n, micro = layout.host_layout(config, process_count)
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
  tfds, tf = sources.import_tfds(), sources.import_tf()
  d = config.dataset
  per_host, _, _ = layout.host_layout(config, process_count)
  host_split = tfds.split_for_jax_process(d.split, process_index=process_index,
                                          process_count=process_count)
  instructions = builder.info.splits[host_split].file_instructions
  size = sum(f.take for f in instructions)
  if not size:
    raise data.DatasetError(f'dataset.split={d.split!r}: {d.name} has fewer examples than the '
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

  image_key, label_key = sources.tfds_keys(builder)
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
  sources.check(config)
  d = config.dataset
  if d.name == 'fake':
    return (fake.fake_batch(config, step, process_index, process_count)
            for step in itertools.count(start_step))

  tf = sources.import_tf()
  if d.name in ('image_folder', 'digits'):
    folder = sources.list_folder(sources.folder_root(config), d.split, reuse=True)
    examples = _folder_examples(config, folder, start_step, process_index, process_count)
    read_file = True
  else:
    examples = _tfds_examples(config, sources.tfds_builder(config), start_step, process_index,
                              process_count)
    read_file = False
  per_host, n, _ = layout.host_layout(config, process_count)
  r = config.model.resolution
  lead = [config.num_d_steps, config.num_accumulations, n]
  ds = examples.interleave(preprocess.preprocess_or_skip(config, read_file), cycle_length=None,
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
        raise data.DatasetError(f'none of the {len(valid)} images of the first batch could be '
                           f'read (e.g. {b["source"][0].decode()}); check the files')
      image, label = image.copy(), label.copy()
      _fill_skipped(image.reshape(-1, *image.shape[3:]), label.reshape(-1), valid, last_good)
    last_good = image.reshape(-1, *image.shape[3:])[-1].copy(), label.reshape(-1)[-1]
    yield {'image': image, 'label': label}
