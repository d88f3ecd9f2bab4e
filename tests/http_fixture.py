"""A loopback HTTP server (127.0.0.1 only) serving files as S3 and the Hugging Face Hub do.

`serve(files)` yields a Server whose `url` serves `files` ({path: bytes}) with
Content-Length and, as S3 does for single-part uploads, an ETag that is the
MD5; `server.hub(repo, files)` also answers huggingface_hub's
/{repo}/resolve/{revision}/{file} HEAD and GET with X-Repo-Commit and the
sha256 as X-Linked-Etag (what the Hub sends for LFS files). `server.faults`
breaks a path on purpose: 'truncate' sends half the bytes and closes,
'corrupt' flips a byte after announcing the real MD5. `server.gets` counts
GET requests per path. Nothing leaves the machine.
"""

import contextlib
import hashlib
import http.server
import threading

COMMIT = 'a' * 40


class Server:
  def __init__(self, httpd):
    self.httpd = httpd
    self.url = f'http://127.0.0.1:{httpd.server_address[1]}'
    self.files, self.faults, self.gets = {}, {}, {}

  def hub(self, repo: str, files: dict[str, bytes]):
    for name, data in files.items():
      self.files[f'/{repo}/resolve/main/{name}'] = data


def _handler(server: Server):
  class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
      del args

    def _head(self):
      path = self.path.split('?')[0]
      data = server.files.get(path)
      if data is None:
        self.send_response(404)
        self.send_header('Content-Length', '0')
        self.end_headers()
        return None, path
      self.send_response(200)
      self.send_header('Content-Length', str(len(data)))
      self.send_header('ETag', f'"{hashlib.md5(data).hexdigest()}"')
      if '/resolve/' in path:
        self.send_header('X-Repo-Commit', COMMIT)
        self.send_header('X-Linked-Etag', f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header('X-Linked-Size', str(len(data)))
      self.end_headers()
      return data, path

    def do_HEAD(self):
      self._head()

    def do_GET(self):
      data, path = self._head()
      if data is None:
        return
      server.gets[path] = server.gets.get(path, 0) + 1
      fault = server.faults.get(path)
      if fault == 'truncate':
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        return
      if fault == 'corrupt':
        data = bytes([data[0] ^ 1]) + data[1:]
      self.wfile.write(data)
  return Handler


@contextlib.contextmanager
def serve(files: dict[str, bytes] | None = None):
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), None)
  server = Server(httpd)
  httpd.RequestHandlerClass = _handler(server)
  server.files.update(files or {})
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  try:
    yield server
  finally:
    httpd.shutdown()
    httpd.server_close()
