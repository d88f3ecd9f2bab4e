"""Files fetched once into biggan_jax's cache, never left half-written."""

import hashlib
import os
import urllib.request


def cache_dir() -> str:
  """$BIGGAN_JAX_CACHE, default ~/.cache/biggan_jax."""
  return os.path.expanduser(os.environ.get('BIGGAN_JAX_CACHE') or
                            os.path.join('~', '.cache', 'biggan_jax'))


def download(url: str, path: str, sha256_prefix: str | None = None) -> None:
  """url -> path via a temporary file and a rename; torch hub's sha256-prefix check."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.tmp-{os.getpid()}'
  digest = hashlib.sha256()
  try:
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, 'wb') as f:
      while chunk := response.read(1 << 20):
        digest.update(chunk)
        f.write(chunk)
    if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
      raise ValueError(f'sha256 {digest.hexdigest()[:8]}... is not the expected '
                       f'{sha256_prefix}...')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
