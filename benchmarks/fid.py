"""Throughput of FID feature extraction: images/s through the FID Inception, ours and pytorch-fid's.

    python benchmarks/fid.py [--batch_sizes=1,50,200] [--resolution=128] \\
      [--batches=5] [--precision=highest] [--torch_threads=N]

Times `FeatureExtractor` (evaluation/extractor.py) as evaluation calls it: uint8 NHWC images
(--resolution, default 128, BigGAN's ImageNet 128 size) in, pool features and
logits out as numpy, so the host -> device copy, the resize to 299 and the
fetch are included. The network is jitted over a 'data' mesh of every local
device and compiled before the clock starts (--warmup calls). Weights are
random (throughput does not depend on them), so nothing is downloaded.

When torch and pytorch-fid import, pytorch-fid's `InceptionV3([3])` runs the
same batches on torch's device (CUDA if available, else CPU): uint8 to the
device, /255, forward under no_grad, features to numpy; the last column is
ours / theirs. Prints a markdown table naming both devices.
"""

import os
import pathlib
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

from biggan_jax.evaluation import extractor as extractor_lib
from biggan_jax.evaluation import inception

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '50', '200'], 'Batch sizes to time.')
_RESOLUTION = flags.DEFINE_integer('resolution', 128, 'Input images are R x R.')
_BATCHES = flags.DEFINE_integer('batches', 5, 'Timed batches per batch size.')
_WARMUP = flags.DEFINE_integer('warmup', 1, 'Untimed batches first (compilation).')
_PRECISION = flags.DEFINE_enum('precision', 'highest', ['highest', 'default'],
                               "Our convs' precision ('default': bf16 / TF32 passes on "
                               'TPU / GPU).')
_TORCH_THREADS = flags.DEFINE_integer('torch_threads', None,
                                      "torch's CPU threads (default: torch's own).")


def _pytorch_fid():
  """pytorch_fid.inception through the test suite's import shim (tests/pytorch_fid_shim.py)."""
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'tests'))
  import pytorch_fid_shim
  return pytorch_fid_shim.import_pytorch_fid()


def random_variables(seed: int = 0) -> dict:
  """He-initialised convs, unit BN statistics: O(1) activations, no download."""
  rng = np.random.default_rng(seed)

  def init(path, leaf):
    name = path[-1].key
    if name == 'kernel':
      return (rng.normal(size=leaf.shape) * np.sqrt(2 / np.prod(leaf.shape[:-1]))).astype(
          np.float32)
    return np.full(leaf.shape, 1.0 if name in ('scale', 'var') else 0.0, np.float32)

  return jax.tree_util.tree_map_with_path(init, inception.expected_variables())


def _time(fn, batches, warmup: int, timed: int) -> float:
  """images/s of fn over `timed` batches after `warmup` untimed ones."""
  for b in batches[:warmup]:
    fn(b)
  start = time.perf_counter()
  for b in batches[warmup:warmup + timed]:
    fn(b)
  return sum(len(b) for b in batches[warmup:warmup + timed]) / (time.perf_counter() - start)


def _pytorch_fid_runner(fid_inception):
  """(device name, images -> pool features) for pytorch-fid's network, random weights."""
  import torch
  if _TORCH_THREADS.value:
    torch.set_num_threads(_TORCH_THREADS.value)
  original = fid_inception.load_state_dict_from_url
  fid_inception.load_state_dict_from_url = lambda *args, **kwargs: None
  load = torch.nn.Module.load_state_dict
  torch.nn.Module.load_state_dict = lambda self, state, *args, **kwargs: None  # keep torch's init
  try:
    model = fid_inception.InceptionV3([3])
  finally:
    fid_inception.load_state_dict_from_url = original
    torch.nn.Module.load_state_dict = load
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  model = model.to(device).eval()
  name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
          else f'cpu, {torch.get_num_threads()} threads')

  def run(images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
      x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 255
      pool = model(x)[0][:, :, 0, 0].cpu().numpy()
    return pool

  return f'{name} (torch {torch.__version__})', run


def main(argv):
  del argv
  sizes = [int(b) for b in _BATCH_SIZES.value]
  rng = np.random.default_rng(0)
  r = _RESOLUTION.value
  fid_inception = _pytorch_fid()
  theirs = _pytorch_fid_runner(fid_inception) if fid_inception else None
  variables = random_variables()
  devices = jax.local_devices()
  ours_device = (f'{devices[0].device_kind} ({devices[0].platform}) x{len(devices)}'
                 + (f', {os.cpu_count()} cores' if devices[0].platform == 'cpu' else ''))
  print(f'ours: biggan_jax FeatureExtractor on {ours_device}, jax {jax.__version__}, '
        f'precision={_PRECISION.value}')
  print('pytorch-fid: ' + (theirs[0] if theirs else 'not importable, not timed'))
  print('\n| batch | ours images/s | pytorch-fid images/s | ours / pytorch-fid |')
  print('|---|---|---|---|')
  for b in sizes:
    n = _WARMUP.value + _BATCHES.value
    batches = [rng.integers(0, 256, (b, r, r, 3), dtype=np.uint8) for _ in range(n)]
    extractor = extractor_lib.FeatureExtractor(variables, batch_size=b, precision=_PRECISION.value)
    ours = _time(extractor, batches, _WARMUP.value, _BATCHES.value)
    row = f'| {b} | {ours:.1f} |'
    if theirs:
      rate = _time(theirs[1], batches, _WARMUP.value, _BATCHES.value)
      row += f' {rate:.1f} | {ours / rate:.2f} |'
    else:
      row += ' - | - |'
    print(row, flush=True)
  print(f'\n{r}x{r} uint8 inputs, {_BATCHES.value} timed batches after {_WARMUP.value} '
        f'warm-up; command: python benchmarks/fid.py {" ".join(sys.argv[1:])}'.rstrip())


if __name__ == '__main__':
  app.run(main)
