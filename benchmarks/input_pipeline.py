"""Throughput of the input pipeline: decoded, preprocessed images/s from JPEG files.

    python benchmarks/input_pipeline.py [--num_images=500] [--resolution=128] \\
      [--batch_size=64] [--batches=40] [--data_dir=ROOT]

Writes --num_images 500x375 JPEGs (quality 90; a smooth random colour field plus
fine noise, so they compress to roughly ImageNet's file sizes rather than
the far larger size of white noise) as an image folder ROOT/train/class_k/ in a
temporary directory (or reads an existing folder given by --data_dir), then
times data.pipeline.create exactly as the training loop calls it ('image_folder',
random flips on, one process): read, decode (only the centre crop), antialiased
resize, flip, scale, batch, to numpy. It reports the median rate over
--batches batches after two untimed ones (one batch is --batch_size images,
num_d_steps = num_accumulations = 1) and the process's CPU time per image (user +
system over the timed batches), which shared or busy cores distort less than the
rate: cores / (CPU ms per image) is what idle cores would reach. Everything runs
on the host's CPU cores, whatever accelerator is present. Prints one line with
the rate and the command.
"""

import os
import resource
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from biggan_jax import config as config_lib
from biggan_jax.data import pipeline

_NUM_IMAGES = flags.DEFINE_integer('num_images', 500, 'JPEG files to generate.')
_RESOLUTION = flags.DEFINE_integer('resolution', 128, 'model.resolution of the output.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Images per batch.')
_BATCHES = flags.DEFINE_integer('batches', 40, 'Timed batches.')
_DATA_DIR = flags.DEFINE_string('data_dir', None,
                                'An existing image folder ROOT (ROOT/train/label/*.jpg) to '
                                'read instead of generated files.')
_NUM_CLASSES = 10


def write_jpegs(root: str, num_images: int, seed: int = 0) -> float:
  """num_images 500x375 JPEGs under root/train/class_k/; returns their mean size in KB."""
  rng = np.random.default_rng(seed)
  sizes = []
  for i in range(num_images):
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((500, 375), Image.BICUBIC), np.float32)
    pixels = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    folder = os.path.join(root, 'train', f'class_{i % _NUM_CLASSES}')
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f'{i:05d}.jpg')
    Image.fromarray(pixels).save(path, 'JPEG', quality=90)
    sizes.append(os.path.getsize(path))
  return float(np.mean(sizes)) / 1024


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    root = _DATA_DIR.value or tmp
    what = f'images under {root}'
    if not _DATA_DIR.value:
      kb = write_jpegs(root, _NUM_IMAGES.value)
      what = f'{_NUM_IMAGES.value} 500x375 JPEGs of {kb:.0f} KB on average'
    config = config_lib.base_config()
    config.model.resolution = _RESOLUTION.value
    config.model.num_classes = len(os.listdir(os.path.join(root, 'train')))
    config.batch_size = _BATCH_SIZE.value
    config.num_d_steps = 1
    config.dataset.name = 'image_folder'
    config.dataset.data_dir = root
    config.dataset.random_flip = True
    batches = pipeline.create(config, 0, process_index=0, process_count=1)
    for _ in range(2):
      next(batches)
    times, cpu_start = [], _cpu_seconds()
    for _ in range(_BATCHES.value):
      start = time.perf_counter()
      next(batches)
      times.append(time.perf_counter() - start)
    cpu_ms = 1000 * (_cpu_seconds() - cpu_start) / (_BATCHES.value * _BATCH_SIZE.value)
  rate = _BATCH_SIZE.value / statistics.median(times)
  mean_rate = _BATCH_SIZE.value * len(times) / sum(times)
  r = _RESOLUTION.value
  print(f'input_pipeline: {rate:.0f} images/s median ({mean_rate:.0f} mean), {cpu_ms:.2f} '
        f'CPU ms/image, at {r}x{r} from {what}, batch {_BATCH_SIZE.value}, '
        f'{os.cpu_count()} CPU cores; command: '
        f'python benchmarks/input_pipeline.py {" ".join(sys.argv[1:])}'.rstrip())


if __name__ == '__main__':
  app.run(main)
