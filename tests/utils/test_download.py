"""utils.download against a loopback server: verified, atomic, one-line errors."""

import hashlib
import os

import pytest

from biggan_jax.utils import download
import http_fixture

DATA = os.urandom(3 << 20)  # three read chunks


def test_a_download_is_verified_and_renamed_into_place(tmp_path):
  with http_fixture.serve({'/w.bin': DATA}) as server:
    path = tmp_path / 'cache' / 'w.bin'
    record = download.download(f'{server.url}/w.bin', str(path),
                               hashlib.sha256(DATA).hexdigest()[:8],
                               size=len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
  assert path.read_bytes() == DATA and os.listdir(path.parent) == ['w.bin']
  assert record['verified'] == ['Content-Length', 'size', 'ETag MD5', 'sha256',
                                'sha256 prefix']
  assert record['md5'] == hashlib.md5(DATA).hexdigest() and record['bytes'] == len(DATA)


@pytest.mark.parametrize('fault, kwargs, message', [
    ('truncate', {}, r'got 1572864 bytes, Content-Length says 3145728 \(interrupted\?\)'),
    ('corrupt', {}, 'ETag MD5 .* is not the expected'),
    (None, {'sha256': '0' * 64}, 'sha256 .* is not the expected'),
    (None, {'size': 5}, 'size says 5'),
])
def test_failed_downloads_leave_the_target_as_it_was(tmp_path, fault, kwargs, message):
  path = tmp_path / 'w.bin'
  path.write_bytes(b'old')
  with http_fixture.serve({'/w.bin': DATA}) as server:
    if fault:
      server.faults['/w.bin'] = fault
    with pytest.raises(download.DownloadError, match=message) as error:
      download.download(f'{server.url}/w.bin', str(path), **kwargs)
  assert '\n' not in str(error.value)
  assert path.read_bytes() == b'old' and os.listdir(tmp_path) == ['w.bin']


def test_missing_files_and_unreachable_servers(tmp_path):
  with http_fixture.serve() as server:
    with pytest.raises(download.DownloadError, match='HTTPError: .*Not Found'):
      download.download(f'{server.url}/nothing', str(tmp_path / 'x'))
    url = server.url
  with pytest.raises(download.DownloadError, match='download failed after 0 bytes'):
    download.download(f'{url}/gone', str(tmp_path / 'x'))
  assert os.listdir(tmp_path) == []
