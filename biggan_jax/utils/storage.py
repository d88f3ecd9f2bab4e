"""gs:// through gcsfs and google-cloud-storage, which honour the standard emulator variables.

etils.epath (and Orbax's paths through it) picks TensorFlow's GCS client when
TensorFlow is installed; that client always talks to www.googleapis.com and
ignores STORAGE_EMULATOR_HOST, so a run could not be tested against an
emulator and failed differently from a real bucket. `route_gs()` (called by
`import biggan_jax`, before any path is opened) makes epath use fsspec's
gcsfs instead: the same objects on a real bucket, with Application Default
Credentials, and the emulator's when STORAGE_EMULATOR_HOST names one.
Orbax's array data goes through TensorStore's own GCS driver (real buckets:
the same credentials; an emulator: TENSORSTORE_GCS_HTTP_URL).

gcsfs's experimental subclass (zonal and hierarchical buckets) asks the
Storage Control gRPC API for every bucket's layout, which an emulator does not
serve (a warning per call); biggan_jax uses only the object API, which every
bucket type has, so the plain GCSFileSystem is chosen. gcsfs's listing cache
is off: other writers (TensorStore, another host, a run that `sample` reads
while it trains) add objects it would not see. All three are environment
defaults: a user's own setting wins.

The workdir lease needs a conditional write, which gcsfs lacks: `read_versioned`
and `write_if_generation` use google-cloud-storage's preconditions
(ifGenerationMatch), which GCS checks and applies atomically.
"""

import errno
import os
import sys


def route_gs() -> None:
  os.environ.setdefault('EPATH_USE_TF', 'false')
  os.environ.setdefault('GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT', 'false')
  os.environ.setdefault('FSSPEC_GCS', '{"use_listings_cache": false}')
  if 'fsspec' in sys.modules:  # imported before biggan_jax: it read its environment already.
    sys.modules['fsspec'].config.set_conf_env(sys.modules['fsspec'].config.conf)


def is_remote(path) -> bool:
  """True for an object-store path (gs://...): no rename, no append, no O_EXCL."""
  return '://' in os.fspath(path)


def _split(path) -> tuple[str, str]:
  bucket, _, name = str(path).removeprefix('gs://').partition('/')
  return bucket, name


_clients = {}


def _blob(path):
  from google.auth import exceptions as auth_exceptions
  from google.cloud import storage  # a dependency of gcsfs
  endpoint = os.environ.get('STORAGE_EMULATOR_HOST')
  if endpoint not in _clients:
    try:
      _clients[endpoint] = storage.Client()
    except auth_exceptions.DefaultCredentialsError:
      raise OSError(errno.EACCES, 'no Google Cloud credentials (run `gcloud auth '
                    'application-default login` or set GOOGLE_APPLICATION_CREDENTIALS)',
                    str(path)) from None
  _client = _clients[endpoint]
  bucket, name = _split(path)
  return _client.bucket(bucket).blob(name)


class PreconditionFailed(OSError):
  """The object changed (or appeared) since the generation the write was conditioned on."""


def _retry(timeout_s: float):
  """google-cloud-storage's retry (backoff on 429, 5xx and connection errors) for at most
  `timeout_s`: its default is 120 s per call. Conditional writes are idempotent, so
  retrying them is safe."""
  from google.cloud.storage import retry
  return retry.DEFAULT_RETRY.with_timeout(timeout_s)


def read_versioned(path, timeout_s: float = 60) -> tuple[str | None, int]:
  """(text, generation) of gs://bucket/name; (None, 0) when it does not exist."""
  from google.api_core import exceptions
  blob = _blob(path)
  try:
    text = blob.download_as_text(retry=_retry(timeout_s))
  except exceptions.NotFound:
    return None, 0
  except (exceptions.GoogleAPICallError, exceptions.RetryError) as e:
    raise one_line(path, e) from None
  return text, int(blob.generation)


def write_if_generation(path, text: str, generation: int, timeout_s: float = 60) -> int:
  """Writes `text` only if the object's generation is still `generation` (0: does not exist).

  Returns the new generation; raises PreconditionFailed when another writer
  got there first.
  """
  from google.api_core import exceptions
  blob = _blob(path)
  try:
    blob.upload_from_string(text, content_type='application/json',
                            if_generation_match=generation, retry=_retry(timeout_s))
  except exceptions.PreconditionFailed as e:
    raise PreconditionFailed(f'{path} changed since generation {generation}') from e
  except (exceptions.GoogleAPICallError, exceptions.RetryError) as e:
    raise one_line(path, e) from None
  return int(blob.generation)


def delete_if_generation(path, generation: int, timeout_s: float = 60) -> None:
  """Deletes the object only if its generation is still `generation`."""
  from google.api_core import exceptions
  try:
    _blob(path).delete(if_generation_match=generation, retry=_retry(timeout_s))
  except exceptions.PreconditionFailed as e:
    raise PreconditionFailed(f'{path} changed since generation {generation}') from e
  except (exceptions.GoogleAPICallError, exceptions.RetryError) as e:
    raise one_line(path, e) from None


def one_line(path, error) -> OSError:
  """A google-api-core error as an OSError whose message is one line."""
  from google.api_core import exceptions
  bucket = f'gs://{_split(path)[0]}'
  if isinstance(error, exceptions.NotFound):
    return OSError(errno.ENOENT, 'no such bucket', bucket)
  if isinstance(error, exceptions.Forbidden):
    return OSError(errno.EACCES, f'permission denied (HTTP 403)', str(path))
  if isinstance(error, exceptions.RetryError):  # connection refused, timeouts, 5xx
    cause = str(error.cause).split(' (Caused by ')[0].splitlines()[0][:160]
    return OSError(errno.EIO, f'GCS unreachable, gave up after retrying ({cause})', str(path))
  first = (str(getattr(error, 'message', '') or error).splitlines() or [''])[0][:200]
  return OSError(errno.EIO, f'{type(error).__name__}: {first}', str(path))
