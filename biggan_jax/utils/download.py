"""Files fetched once into biggan_jax's cache, verified, never left half-written.

A download goes to a temporary file beside its target and is renamed into
place only once it is complete and verified against what is known of it:
the server's Content-Length, an S3-style ETag that is the file's MD5 (a
single-part upload's: 32 hex digits), and the size and hashes the caller
knows (torch hub's sha256 prefix, a release's sha256). An interrupted or
corrupt transfer raises DownloadError (one line) and leaves nothing behind.
"""

import hashlib
import os
import re
import sys
import urllib.error
import urllib.request

CHUNK = 1 << 20


class DownloadError(ValueError):
  """A download that failed or did not verify; the message is one line."""


def cache_dir() -> str:
  """$BIGGAN_JAX_CACHE, default ~/.cache/biggan_jax."""
  return os.path.expanduser(os.environ.get('BIGGAN_JAX_CACHE') or
                            os.path.join('~', '.cache', 'biggan_jax'))


def _progress(total: int | None, label: str):
  """tqdm on stderr: on a terminal or in a Jupyter kernel (Colab), silent in logs and CI."""
  from tqdm import tqdm
  shown = sys.stderr.isatty() or 'ipykernel' in sys.modules
  return tqdm(total=total, desc=label, unit='B', unit_scale=True, unit_divisor=1024,
              file=sys.stderr, disable=not shown, leave=False)


def _md5_etag(etag: str | None) -> str | None:
  """The MD5 an S3 ETag carries (single-part uploads); None for multipart or other ETags."""
  etag = (etag or '').strip().strip('"').lower()
  return etag if re.fullmatch(r'[0-9a-f]{32}', etag) else None


def download(url: str, path: str, sha256_prefix: str | None = None, *,
             size: int | None = None, sha256: str | None = None,
             label: str | None = None) -> dict:
  """url -> path, verified; returns what was checked.

  Args:
    url: http(s) or file URL.
    path: the target; its folder is created.
    sha256_prefix: the leading hex digits of the file's sha256 (torch hub's
      file-name convention).
    size, sha256: the file's known size in bytes and sha256.
    label: the progress bar's name (default: the file name).
  Returns:
    {'url', 'bytes', 'md5', 'sha256', 'verified': [what matched]}.
  Raises:
    DownloadError: network errors, an interrupted transfer, a size or hash
      that does not match; `path` is then as it was before.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                     f'.{os.path.basename(path)}.part-{os.getpid()}')
  md5, digest = hashlib.md5(), hashlib.sha256()
  received = 0
  try:
    try:
      with urllib.request.urlopen(url, timeout=60) as response, open(tmp, 'wb') as f:
        length = response.headers.get('Content-Length')
        length = int(length) if length and length.isdigit() else None
        etag_md5 = _md5_etag(response.headers.get('ETag'))
        with _progress(length or size, label or os.path.basename(path)) as bar:
          while chunk := response.read(CHUNK):
            md5.update(chunk)
            digest.update(chunk)
            f.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as e:  # incl. http.client errors.
      reason = getattr(e, 'reason', None) or e
      raise DownloadError(f'{url}: download failed after {received} bytes '
                          f'({type(e).__name__}: {" ".join(str(reason).split())[:150]})'
                          ) from None
    verified = []
    for what, expected in (('Content-Length', length), ('size', size)):
      if expected is not None:
        if received != expected:
          raise DownloadError(f'{url}: got {received} bytes, {what} says {expected} '
                              '(interrupted?); nothing was kept, try again')
        verified.append(what)
    hashes = (('ETag MD5', md5.hexdigest(), etag_md5),
              ('sha256', digest.hexdigest(), sha256 and sha256.lower()),
              ('sha256 prefix', digest.hexdigest()[:len(sha256_prefix or '')], sha256_prefix))
    for what, got, expected in hashes:
      if expected:
        if got != expected:
          raise DownloadError(f'{url}: {what} {got[:16]}... is not the expected '
                              f'{expected[:16]}... (a corrupt transfer or a changed file); '
                              'nothing was kept')
        verified.append(what)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return {'url': url, 'bytes': received, 'md5': md5.hexdigest(),
          'sha256': digest.hexdigest(), 'verified': verified}
