"""Pretrained BigGANs by name: downloaded once, verified, converted once, reused.

    biggan_jax.load_generator('biggan-deep-256')
    python -m biggan_jax.sample --checkpoint=biggan-deep-256 --output=sheet.png --labels=goldfish
    biggan_jax.load_generator('hf://owner/repo')    # a mirror on the Hugging Face Hub

Names are pytorch-pretrained-BigGAN's releases (its model.py,
PRETRAINED_MODEL_ARCHIVE_MAP / PRETRAINED_CONFIG_ARCHIVE_MAP: huggingface's
port of TF-Hub's BigGAN-deep 128/256/512), which `BigGAN.from_pretrained`
users know. `hf://owner/repo[@revision]` is any Hub repository holding the
same two files (config.json, pytorch_model.bin), fetched with huggingface_hub.

Cache ($BIGGAN_JAX_CACHE, default ~/.cache/biggan_jax):
  downloads/<name>/        the source files while they are being fetched and
                           converted; removed once the conversion is complete
  pretrained/<name>/       the converted checkpoint directory; its meta.json
                           'pretrained' entry records every file's URL, size,
                           MD5, sha256 and what was verified
A second call finds pretrained/<name>/ and downloads nothing.
$BIGGAN_JAX_PRETRAINED_URL replaces the S3 base URL (a mirror of the files). Each file is
verified as utils/download.py says (the S3 files: Content-Length and the ETag,
their MD5; the Hub's: size and the sha256 it publishes for LFS files).
"""

import json
import os
import re
import shutil

from biggan_jax.checkpoints import converted
from biggan_jax.utils import download, files

S3 = 'https://s3.amazonaws.com/models.huggingface.co/biggan/'
HF_FILES = ('config.json', 'pytorch_model.bin')
RELEASES = ('biggan-deep-128', 'biggan-deep-256', 'biggan-deep-512')
HF_PREFIX = 'hf://'


class PretrainedError(ValueError):
  """A pretrained model that cannot be fetched or converted; one line says why."""


def is_pretrained(spec) -> bool:
  """True for a release name (biggan-deep-256) or an hf://owner/repo spec."""
  spec = str(spec)
  return spec in RELEASES or spec.startswith(HF_PREFIX)


def _folder_name(spec: str) -> str:
  if spec in RELEASES:
    return spec
  repo = spec[len(HF_PREFIX):]
  if not re.fullmatch(r'[\w.\-]+/[\w.\-]+(@[\w.\-/]+)?', repo):
    raise PretrainedError(f'{spec}: give hf://owner/repo or hf://owner/repo@revision')
  return os.path.join('hf', repo)


def converted_path(spec: str) -> str:
  """Where `spec`'s converted checkpoint directory is cached."""
  return os.path.join(download.cache_dir(), 'pretrained', _folder_name(spec))


def _record_path(folder: str, name: str) -> str:
  return os.path.join(folder, f'{name}.download.json')


def release_urls(spec: str) -> dict[str, str]:
  """{file: URL} of a release: <base><name>-<file>, the base S3's or
  $BIGGAN_JAX_PRETRAINED_URL (a mirror of those files)."""
  base = os.environ.get('BIGGAN_JAX_PRETRAINED_URL') or S3
  return {f: f'{base.rstrip("/")}/{spec}-{f}' for f in HF_FILES}


def _fetch_release(spec: str, folder: str) -> dict:
  """The release's files into `folder` (each once); {file: download record}."""
  records = {}
  for name, url in release_urls(spec).items():
    path, record = os.path.join(folder, name), _record_path(folder, name)
    if not (os.path.isfile(path) and os.path.isfile(record)):
      files.write_json(record, download.download(url, path, label=f'{spec} {name}'))
    with open(record) as f:
      records[name] = json.load(f)
  return records


def _fetch_hf(spec: str, folder: str, endpoint: str | None) -> dict:
  """hf://owner/repo[@revision]'s files via huggingface_hub, size and sha256 checked."""
  try:
    import huggingface_hub
  except ImportError:
    raise PretrainedError(f'{spec}: needs huggingface_hub: pip install huggingface_hub'
                          ) from None
  repo, _, revision = spec[len(HF_PREFIX):].partition('@')
  records = {}
  for name in HF_FILES:
    try:
      url = huggingface_hub.hf_hub_url(repo, name, revision=revision or None,
                                       endpoint=endpoint)
      info = huggingface_hub.get_hf_file_metadata(url)
      path = huggingface_hub.hf_hub_download(repo, name, revision=revision or None,
                                             local_dir=folder, endpoint=endpoint)
    except Exception as e:  # huggingface_hub and httpx raise many kinds.
      first = (str(e).strip().splitlines() or [''])[0][:200]
      raise PretrainedError(f'{spec}: cannot fetch {name} ({type(e).__name__}: {first}); '
                            'a pytorch-pretrained-BigGAN repository holds '
                            f'{" and ".join(HF_FILES)}') from None
    record = {'url': url, 'commit': info.commit_hash, 'bytes': os.path.getsize(path),
              'sha256': _sha256(path), 'verified': []}
    if info.size is not None:
      if record['bytes'] != info.size:
        os.remove(path)
        raise PretrainedError(f'{spec}: {name} has {record["bytes"]} bytes, the Hub says '
                              f'{info.size}; nothing was kept, try again')
      record['verified'].append('size')
    etag = (info.etag or '').strip('"').lower()
    if re.fullmatch(r'[0-9a-f]{64}', etag):  # LFS files: the etag is their sha256.
      if record['sha256'] != etag:
        os.remove(path)
        raise PretrainedError(f'{spec}: {name} sha256 {record["sha256"][:16]}... is not the '
                              f'Hub\'s {etag[:16]}...; nothing was kept')
      record['verified'].append('sha256')
    records[name] = record
  return records


def _sha256(path: str) -> str:
  import hashlib
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(download.CHUNK):
      digest.update(chunk)
  return digest.hexdigest()


def fetch(spec: str, *, endpoint: str | None = None) -> str:
  """The converted checkpoint directory of `spec`, downloading and converting it once.

  Args:
    spec: a name of RELEASES or hf://owner/repo[@revision].
    endpoint: the Hub's URL for hf:// (default: huggingface_hub's, $HF_ENDPOINT).
  Raises:
    PretrainedError / download.DownloadError (ValueErrors): one line.
  """
  spec = str(spec)
  if not is_pretrained(spec):
    raise PretrainedError(f'{spec}: not a pretrained model; known: {", ".join(RELEASES)}, '
                          'or hf://owner/repo')
  target = converted_path(spec)
  if converted.is_converted(target):
    return target
  folder = os.path.join(download.cache_dir(), 'downloads', _folder_name(spec))
  records = (_fetch_release(spec, folder) if spec in RELEASES
             else _fetch_hf(spec, folder, endpoint))
  from biggan_jax.convert import huggingface
  try:
    meta, g_vars, _ = huggingface.convert_folder(folder)
  except ValueError as e:
    raise PretrainedError(f'{spec}: the downloaded files do not convert ({e}); remove '
                          f'{folder} to fetch them again') from None
  meta['pretrained'] = {'name': spec, 'files': records}
  converted.save(target, meta, g_vars, overwrite=os.path.isdir(target))
  shutil.rmtree(folder, ignore_errors=True)
  return target
