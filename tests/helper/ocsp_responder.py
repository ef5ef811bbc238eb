#!/usr/bin/env python3
"""An OCSP responder for the tests: answers for the certificate in LEAF_PEM (read at each request:
kinfra writes it once its CA issued it) with a validity of an hour, as MODE_FILE says (read at each
request too): good, revoked, unknown (signed by the issuer), or stranger (good, but signed by a key
that has nothing to do with the issuer). HTTP on 127.0.0.1:PORT; one log line per answer; stops by
itself after 300 s.

usage: ocsp_responder.py PORT ISSUER_CERT ISSUER_KEY LEAF_PEM MODE_FILE
"""
import datetime
import http.server
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

PORT, ISSUER_CERT, ISSUER_KEY, LEAF_PEM, MODE_FILE = sys.argv[1:6]
issuer = x509.load_pem_x509_certificate(open(ISSUER_CERT, "rb").read())
issuer_key = serialization.load_pem_private_key(open(ISSUER_KEY, "rb").read(), password=None)

# A signer unrelated to the issuer, with the issuer's name (a forgery must fail on the key).
stranger_key = ec.generate_private_key(ec.SECP256R1())
_now = datetime.datetime.utcnow()
stranger = (x509.CertificateBuilder().subject_name(issuer.subject).issuer_name(issuer.subject)
            .public_key(stranger_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now - datetime.timedelta(days=1)).not_valid_after(_now + datetime.timedelta(days=1))
            .sign(stranger_key, hashes.SHA256()))


def leaf():
    pem = open(LEAF_PEM, "rb").read()
    begin = pem.index(b"-----BEGIN CERTIFICATE-----")
    return x509.load_pem_x509_certificate(pem[begin:])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        request = ocsp.load_der_ocsp_request(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        cert = leaf()
        mode = open(MODE_FILE).read().strip()
        now = datetime.datetime.utcnow().replace(microsecond=0)
        status = {"revoked": ocsp.OCSPCertStatus.REVOKED, "unknown": ocsp.OCSPCertStatus.UNKNOWN}.get(
            mode, ocsp.OCSPCertStatus.GOOD)
        signer, signer_key = (stranger, stranger_key) if mode == "stranger" else (issuer, issuer_key)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=issuer, algorithm=hashes.SHA1(), cert_status=status,
            this_update=now - datetime.timedelta(minutes=1), next_update=now + datetime.timedelta(hours=1),
            revocation_time=now - datetime.timedelta(days=1) if mode == "revoked" else None, revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
        if mode == "stranger":
            builder = builder.certificates([stranger])
        if request.serial_number != cert.serial_number:
            body = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                serialization.Encoding.DER)
        else:
            body = builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        sys.stderr.write("ocsp: answered %s for serial %x\n" % (mode, request.serial_number))
        sys.stderr.flush()

    def log_message(self, fmt, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
threading.Timer(300, server.shutdown).start()
server.serve_forever()
