"""Pretrained models by name and hf://, against a loopback server serving a tiny
pytorch-pretrained-BigGAN release in the real file formats (tests/hf_fixture.py)."""

import json
import os

import numpy as np
import pytest

import biggan_jax
from biggan_jax import sample
from biggan_jax.checkpoints import converted, pretrained
from biggan_jax.utils import download
from cli_checks import one_error_line
import http_fixture

pytest.importorskip('torch')
pytest.importorskip('pytorch_pretrained_biggan')
hf_fixture = pytest.importorskip('hf_fixture')

NAME = 'biggan-deep-128'


@pytest.fixture(scope='module')
def release(tmp_path_factory):
  """(files {name: bytes} of a tiny BigGAN-deep 128 release, the package's model)."""
  folder = tmp_path_factory.mktemp('tiny-hf')
  hf_fixture.write_tiny_hf(str(folder))
  model, _ = hf_fixture.tiny_model()
  return {f: (folder / f).read_bytes() for f in pretrained.HF_FILES}, model


@pytest.fixture
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv('BIGGAN_JAX_CACHE', str(tmp_path / 'cache'))
  return tmp_path / 'cache'


def serve_release(files):
  return http_fixture.serve({f'/{NAME}-{f}': data for f, data in files.items()})


def leftovers(cache):
  """Every file under the cache's downloads/ folder."""
  root = cache / 'downloads'
  return sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file()) \
      if root.exists() else []


def test_a_release_by_name_is_downloaded_verified_and_converted_once(
    release, cache, monkeypatch, tmp_path, capsys):
  files, model = release
  with serve_release(files) as server:
    monkeypatch.setenv('BIGGAN_JAX_PRETRAINED_URL', server.url)
    sampler = biggan_jax.load_generator(NAME)
    assert server.gets == {f'/{NAME}-config.json': 1, f'/{NAME}-pytorch_model.bin': 1}
    # The converted model is the package's, in eval mode, at τ = 0.4.
    z = sampler.draw_z(2, truncation=0.4, seed=3)
    images = sampler.sample([3, 7], z=z, truncation=0.4)
    want = hf_fixture.reference_images(model, z, np.array([3, 7]), 0.4)
    assert np.abs(images - want).max() / np.abs(want).max() < 1e-5
    meta = converted.read_meta(pretrained.converted_path(NAME))
    weights = meta['pretrained']['files']['pytorch_model.bin']
    assert weights['verified'] == ['Content-Length', 'ETag MD5']
    assert weights['bytes'] == len(files['pytorch_model.bin'])
    assert weights['url'] == f'{server.url}/{NAME}-pytorch_model.bin'
    assert leftovers(cache) == []  # the sources go once converted.
    # Again, by name, through the CLI: nothing is downloaded.
    out = tmp_path / 'x.npy'
    assert sample.main(['sample', f'--checkpoint={NAME}', '--seeds=3', '--labels=7',
                        f'--output={out}', '--truncation=0.4']) == 0, capsys.readouterr().err
    assert sum(server.gets.values()) == 2
    np.testing.assert_allclose(np.load(out)[0], sampler.sample([7], seed=3, truncation=0.4)[0],
                               atol=1e-6)


def test_interrupted_and_corrupt_downloads_keep_nothing(release, cache, monkeypatch, tmp_path,
                                                       capsys):
  files, _ = release
  weights = f'/{NAME}-pytorch_model.bin'
  with serve_release(files) as server:
    monkeypatch.setenv('BIGGAN_JAX_PRETRAINED_URL', server.url)
    server.faults[weights] = 'truncate'
    out = tmp_path / 'sheet.png'
    assert sample.main(['sample', f'--checkpoint={NAME}', f'--output={out}']) == 2
    one_error_line(capsys, weights[1:], 'interrupted')
    # The complete config.json stays (with its record); no partial weights file.
    assert leftovers(cache) == ['biggan-deep-128/config.json',
                                'biggan-deep-128/config.json.download.json']
    server.faults[weights] = 'corrupt'
    with pytest.raises(download.DownloadError, match='ETag MD5 .* not the expected'):
      pretrained.fetch(NAME)
    assert len(leftovers(cache)) == 2 and not out.exists()
    assert not (cache / 'pretrained').exists()
    del server.faults[weights]
    assert converted.is_converted(pretrained.fetch(NAME))
    assert server.gets[f'/{NAME}-config.json'] == 1  # fetched once, kept across failures.


def test_hf_hub_mirror(release, cache):
  files, _ = release
  with http_fixture.serve() as server:
    server.hub('someone/biggan-deep-tiny', files)
    server.faults['/someone/biggan-deep-tiny/resolve/main/pytorch_model.bin'] = 'corrupt'
    with pytest.raises(pretrained.PretrainedError, match='sha256 .* is not the Hub'):
      pretrained.fetch('hf://someone/biggan-deep-tiny', endpoint=server.url)
    assert not (cache / 'downloads' / 'hf' / 'someone' / 'biggan-deep-tiny' /
                'pytorch_model.bin').exists()
    server.faults.clear()
    path = pretrained.fetch('hf://someone/biggan-deep-tiny', endpoint=server.url)
    meta = converted.read_meta(path)
    record = meta['pretrained']['files']['pytorch_model.bin']
    assert record['verified'] == ['size', 'sha256'] and record['commit'] == http_fixture.COMMIT
    assert meta['source'] == 'huggingface' and meta['class_names'] == 'imagenet'
    with pytest.raises(pretrained.PretrainedError, match='cannot fetch config.json'):
      pretrained.fetch('hf://someone/missing', endpoint=server.url)


def test_names_that_are_not_releases():
  assert pretrained.is_pretrained('biggan-deep-512') and pretrained.is_pretrained('hf://a/b')
  assert not pretrained.is_pretrained('runs/biggan-deep-128')
  with pytest.raises(pretrained.PretrainedError, match='hf://owner/repo'):
    pretrained.fetch('hf://no-slash')
  with pytest.raises(biggan_jax.checkpoints.CheckpointError, match='biggan-deep-128, '):
    biggan_jax.load_generator('biggan-deep-64')
