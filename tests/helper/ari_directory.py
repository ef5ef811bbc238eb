#!/usr/bin/env python3
"""A CA's directory with ACME Renewal Information (RFC 9773), for a CA that has none (pebble 2.4):
GET /dir is the CA's own directory plus `renewalInfo` pointing here; GET /renewal-info/ID answers
for the certificate in LEAF_PEM only (404 for any other ID): the first certificate asked about
gets a window that is already over (renew now), every later one a window a month ahead.
HTTPS on 127.0.0.1:PORT with CERT/KEY (the CA's own API certificate); stops by itself after 300 s.

usage: ari_directory.py PORT CERT KEY CA_DIRECTORY_URL LEAF_PEM
"""
import base64
import datetime
import http.server
import json
import ssl
import sys
import threading
import urllib.request

from cryptography import x509

PORT, CERT, KEY, DIRECTORY, LEAF_PEM = sys.argv[1:6]
first_id = None


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ari_id():
    pem = open(LEAF_PEM, "rb").read()
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    n = cert.serial_number
    return b64url(aki) + "." + b64url(n.to_bytes((n.bit_length() + 8) // 8, "big"))


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 200 and "suggestedWindow" in doc:
            self.send_header("Retry-After", "21600")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        global first_id
        if self.path == "/dir":
            context = ssl.create_default_context(cafile=CERT)
            doc = json.load(urllib.request.urlopen(DIRECTORY, context=context))
            doc["renewalInfo"] = f"https://127.0.0.1:{PORT}/renewal-info/"
            return self.reply(200, doc)
        if self.path.startswith("/renewal-info/"):
            asked = self.path[len("/renewal-info/"):]
            if asked != ari_id():
                sys.stderr.write(f"ari: unknown certificate {asked}\n")
                return self.reply(404, {"type": "urn:ietf:params:acme:error:malformed"})
            now = datetime.datetime.utcnow()
            if first_id in (None, asked):
                first_id = asked
                window = (now - datetime.timedelta(hours=2), now - datetime.timedelta(hours=1))
            else:
                window = (now + datetime.timedelta(days=30), now + datetime.timedelta(days=31))
            sys.stderr.write(f"ari: window for {asked}: {stamp(window[0])} .. {stamp(window[1])}\n")
            sys.stderr.flush()
            return self.reply(200, {"suggestedWindow": {"start": stamp(window[0]), "end": stamp(window[1])},
                                    "explanationURL": "https://ca.example/incident"})
        self.reply(404, {})

    def log_message(self, fmt, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
threading.Timer(300, server.shutdown).start()
server.serve_forever()
