#!/usr/bin/env python3
"""Opens N keep-alive connections to 127.0.0.1:PORT, sends one request on each, reads the
answers, prints "held N", then keeps them open until stdin closes. For bench/run.sh, which
reads the proxy's RSS while they are held. With a third argument `tls`, over TLS (the
certificate is not checked: the bench's own).

    hold_idle.py PORT N [tls]"""
import resource
import socket
import ssl
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
tls = len(sys.argv) > 3 and sys.argv[3] == "tls"
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
conns = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    if tls:
        s = context.wrap_socket(s, server_hostname="localhost")
    s.sendall(request)
    conns.append(s)
for s in conns:
    # Read one whole response: headers, then Content-Length bytes.
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed early")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
print("held", len(conns), flush=True)
sys.stdin.read()
