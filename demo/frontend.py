#!/usr/bin/env python3
"""The demo "frontend" service: an HTML page on $PORT (default 8001) that calls the api through kinfra."""
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kinfra demo frontend</title>
<style>
  body { background: #0F1115; color: #E6E8EE; font-family: system-ui, sans-serif; margin: 0; padding: 3rem; }
  h1 { color: #5A8DEE; font-weight: 600; }
  code, pre { font-family: ui-monospace, monospace; color: #9EA0A6; }
  a { color: #5A8DEE; }
</style>
</head>
<body>
<h1>kinfra demo frontend</h1>
<p>This page is served by <code>demo/frontend.py</code> through kinfra on port 9100.
   Requests under <code>/api</code> go to <code>demo/api.py</code>.</p>
<p><a href="/api/items">/api/items</a> &middot; <a href="/api/health">/api/health</a></p>
<pre id="items">loading /api/items ...</pre>
<script>
fetch('/api/items').then(r => r.json()).then(j => {
  document.getElementById('items').textContent = JSON.stringify(j, null, 2);
}).catch(e => { document.getElementById('items').textContent = 'api unavailable: ' + e; });
</script>
</body>
</html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kinfra-demo-frontend"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            body, ctype, status = b"ok\n", "text/plain", 200
        elif path in ("/", "/index.html"):
            body, ctype, status = PAGE.encode(), "text/html; charset=utf-8", 200
        else:
            body, ctype, status = b"<!doctype html><h1>404</h1><p>Not found on the demo frontend.</p>\n", "text/html; charset=utf-8", 404
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        if self.path.split("?", 1)[0] in ("/health", "/api/health") and self.command == "GET":
            return  # kinfra checks this every few seconds; do not flood the log with it
        sys.stdout.write("INFO %s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


def main():
    port = int(os.environ.get("PORT", "8001"))
    host = os.environ.get("HOST", "127.0.0.1")  # 0.0.0.0 when it runs in its own container
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"INFO frontend listening on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
