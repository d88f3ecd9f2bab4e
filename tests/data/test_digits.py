"""The digits demo: the dataset writer, a few steps of configs/digits.py, digits_eval."""

import json

import numpy as np
from PIL import Image

from biggan_jax import config as config_lib
from biggan_jax.data import digits
from biggan_jax.evaluation import digits as digits_eval
from biggan_jax.training import loop
from biggan_jax.utils import images
from paths import REPO



def digits_config(**overrides):
  return config_lib.from_file(REPO / 'configs' / 'digits.py', **overrides)


def test_writer_makes_a_stratified_image_folder(tmp_path):
  root = digits.write_digits(str(tmp_path / 'digits'), 16)
  counts = {split: {c.name: len(list(c.iterdir())) for c in (tmp_path / 'digits' / split).iterdir()}
            for split in ('train', 'test')}
  assert sorted(counts['train']) == sorted(counts['test']) == [str(d) for d in range(10)]
  assert sum(counts['train'].values()) == 1500 and sum(counts['test'].values()) == 297
  # Stratified: every class holds 16-17 % of its images out, as the whole set does.
  for c in range(10):
    assert 29 <= counts['test'][str(c)] <= 30
    assert 145 <= counts['train'][str(c)] <= 153
  image = np.asarray(Image.open(next((tmp_path / 'digits' / 'train' / '0').iterdir())))
  assert image.shape == (16, 16) and image.dtype == np.uint8 and image.max() > 200
  # Written once: a second call leaves the files alone.
  mtime = (tmp_path / 'digits' / 'DIGITS_RESOLUTION').stat().st_mtime
  assert digits.write_digits(root, 16) == root
  assert (tmp_path / 'digits' / 'DIGITS_RESOLUTION').stat().st_mtime == mtime


def test_round_trip_keeps_digits_classifiable():
  x, y, is_test = digits_eval.real_digits(16)
  assert x.shape == (1797, 64) and is_test.sum() == 297
  assert 0 <= x.min() and x.max() <= 16


def test_digits_config_trains_and_evaluates(tmp_path):
  config = digits_config(total_steps=3, log_every=1)
  config.dataset.data_dir = str(tmp_path / 'data')
  workdir = tmp_path / 'run'
  state = loop.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 3
  assert (workdir / 'truncation.png').exists()
  sheet = np.asarray(Image.open(workdir / 'truncation.png'))
  tile = 16 * images.upscale_factor(16) + images.PADDING
  # A row per class, a column per threshold (4), labelled above: as the sample sheets.
  assert sheet.shape == (images.LABEL_HEIGHT + 10 * tile + images.PADDING,
                         4 * tile + images.PADDING, 3)
  samples = np.asarray(Image.open(workdir / 'samples' / 'step_0000003.png'))
  assert samples.shape == (10 * tile + images.PADDING, 10 * tile + images.PADDING, 3)

  result = digits_eval.evaluate(str(workdir), num_per_class=8)
  assert result['step'] == 3
  assert result['real_test_accuracy'] > 0.95  # the classifier itself is good
  assert len(result['per_class']) == 10
  assert 0 <= result['generated_accuracy'] <= 1 and result['diversity_mean'] >= 0
  (workdir / 'digits_eval.json').write_text(json.dumps(result))
