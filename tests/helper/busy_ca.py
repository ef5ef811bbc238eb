#!/usr/bin/env python3
"""An ACME CA that is rate limiting everyone: its directory and nonces work, and every new account
is refused with 429 rateLimited and a Retry-After (an HTTP-date two hours ahead). HTTPS on
127.0.0.1:PORT with the given certificate; stops by itself after 300 s.

usage: busy_ca.py PORT CERT KEY
"""
import email.utils
import http.server
import json
import ssl
import sys
import threading
import time

PORT, CERT, KEY = int(sys.argv[1]), sys.argv[2], sys.argv[3]
BASE = f"https://127.0.0.1:{PORT}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body=b"", ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Replay-Nonce", "nonce-%d" % time.monotonic_ns())
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/dir":
            doc = {"newNonce": BASE + "/nonce", "newAccount": BASE + "/account", "newOrder": BASE + "/order"}
            self.reply(200, json.dumps(doc).encode())
        else:
            self.reply(404)

    def do_HEAD(self):
        self.reply(200 if self.path == "/nonce" else 404)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        later = email.utils.formatdate(time.time() + 7200, usegmt=True)
        problem = {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many new accounts"}
        self.reply(429, json.dumps(problem).encode(), "application/problem+json", [("Retry-After", later)])

    def log_message(self, fmt, *args):
        sys.stderr.write("busy_ca: " + fmt % args + "\n")


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
threading.Timer(300, server.shutdown).start()
server.serve_forever()
