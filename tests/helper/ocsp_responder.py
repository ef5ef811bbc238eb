#!/usr/bin/env python3
"""An OCSP responder for the tests: answers for the certificate in LEAF_PEM (read at each request:
kinfra writes it once its CA issued it), signed by the issuer, with STATUS (good or revoked) and a
validity of an hour. HTTP on 127.0.0.1:PORT; one log line per answer; stops by itself after 120 s.

usage: ocsp_responder.py PORT ISSUER_CERT ISSUER_KEY LEAF_PEM STATUS
"""
import datetime
import http.server
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

PORT, ISSUER_CERT, ISSUER_KEY, LEAF_PEM, STATUS = sys.argv[1:6]
issuer = x509.load_pem_x509_certificate(open(ISSUER_CERT, "rb").read())
issuer_key = serialization.load_pem_private_key(open(ISSUER_KEY, "rb").read(), password=None)


def leaf():
    pem = open(LEAF_PEM, "rb").read()
    begin = pem.index(b"-----BEGIN CERTIFICATE-----")
    return x509.load_pem_x509_certificate(pem[begin:])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        request = ocsp.load_der_ocsp_request(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        cert = leaf()
        now = datetime.datetime.utcnow().replace(microsecond=0)
        revoked = STATUS == "revoked"
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=issuer, algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - datetime.timedelta(minutes=1), next_update=now + datetime.timedelta(hours=1),
            revocation_time=now - datetime.timedelta(days=1) if revoked else None, revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        if request.serial_number != cert.serial_number:
            body = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                serialization.Encoding.DER)
        else:
            body = builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        sys.stderr.write("ocsp: answered for serial %x\n" % request.serial_number)
        sys.stderr.flush()

    def log_message(self, fmt, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
threading.Timer(120, server.shutdown).start()
server.serve_forever()
