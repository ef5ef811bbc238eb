#!/usr/bin/env python3
"""The demo "api" service: a small JSON API on $PORT (default 8000)."""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.time()
ITEMS = [
    {"id": 1, "name": "alpha", "status": "active"},
    {"id": 2, "name": "beta", "status": "active"},
    {"id": 3, "name": "gamma", "status": "paused"},
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kinfra-demo-api"

    def send_json(self, status, body):
        data = (json.dumps(body, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/health", "/api/health"):
            return self.send_json(200, {"status": "ok", "uptime_s": round(time.time() - STARTED, 1)})
        if path in ("/api", "/api/"):
            return self.send_json(200, {"service": "api", "endpoints": ["/api/items", "/api/items/{id}", "/api/health"]})
        if path == "/api/items":
            return self.send_json(200, {"items": ITEMS})
        if path.startswith("/api/items/"):
            try:
                wanted = int(path.rsplit("/", 1)[1])
            except ValueError:
                return self.send_json(400, {"error": "item id must be a number"})
            for item in ITEMS:
                if item["id"] == wanted:
                    return self.send_json(200, item)
            return self.send_json(404, {"error": f"no item {wanted}"})
        return self.send_json(404, {"error": "not found", "path": path})

    do_HEAD = do_GET

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "body must be JSON"})
        return self.send_json(201, {"received": parsed, "forwarded_for": self.headers.get("X-Forwarded-For")})

    def log_message(self, fmt, *args):
        if self.path.split("?", 1)[0] in ("/health", "/api/health") and self.command == "GET":
            return  # kinfra checks this every few seconds; do not flood the log with it
        sys.stdout.write("INFO %s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


def main():
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")  # 0.0.0.0 when it runs in its own container
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"INFO api listening on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
