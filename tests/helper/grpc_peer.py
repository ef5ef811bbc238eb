#!/usr/bin/python3
"""Both ends of a gRPC call for kinfra's gRPC tests (Debian python3-grpcio), without generated code:
methods take and return raw bytes.

    grpc_peer.py server PORT_FILE        serve test.Echo on 127.0.0.1 (plain HTTP/2), port written
                                         to PORT_FILE; exits after 120 s or on SIGTERM
    grpc_peer.py client TARGET [CA]      call every method through TARGET (host:port; TLS with CA,
                                         checked for the name "localhost"), print JSON results
    grpc_peer.py hold TARGET FILE        open a Bidi call (plain HTTP/2), print "held" once its first
                                         echo came back, keep it open until FILE exists (at most 30 s)

Methods: Unary (echo, with the server's pid as trailing metadata), ServerStream (N messages),
Bidi (echoes each message), Fail (INVALID_ARGUMENT with a message and trailing metadata).
"""
import json
import os
import sys
import time
from concurrent import futures

import grpc


def identity(b):
    return b


def serve(port_file):
    def unary(request, context):
        context.set_trailing_metadata((("x-pid", str(os.getpid())),))
        return b"echo:" + request

    def server_stream(request, context):
        for i in range(int(request.decode() or "3")):
            yield b"message %d" % i

    def bidi(requests, context):
        for r in requests:
            yield b"bidi:" + r

    def fail(request, context):
        context.set_trailing_metadata((("x-reason", "on purpose"),))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad argument: " + request.decode())

    handler = grpc.method_handlers_generic_handler("test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, identity, identity),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, identity, identity),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, identity, identity),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, identity, identity),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(port_file + ".tmp", port_file)
    server.wait_for_termination(timeout=120)


def call(channel, results, name, fn):
    try:
        results[name] = fn(channel)
    except grpc.RpcError as e:
        results[name] = {"code": e.code().name, "details": e.details(),
                         "trailers": dict(e.trailing_metadata() or ())}


def client(target, ca):
    if ca:
        creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
        channel = grpc.secure_channel(target, creds, options=(("grpc.ssl_target_name_override", "localhost"),))
    else:
        channel = grpc.insecure_channel(target)
    results = {}

    def unary(ch):
        value, c = ch.unary_unary("/test.Echo/Unary", identity, identity).with_call(b"hello", timeout=10)
        return {"value": value.decode(), "trailers": dict(c.trailing_metadata())}

    def server_stream(ch):
        return [m.decode() for m in ch.unary_stream("/test.Echo/ServerStream", identity, identity)(b"100", timeout=10)]

    def bidi(ch):
        return [m.decode() for m in ch.stream_stream("/test.Echo/Bidi", identity, identity)(
            iter([b"m%d" % i for i in range(20)]), timeout=10)]

    def big(ch):
        payload = b"x" * (3 * 1024 * 1024)
        value = ch.unary_unary("/test.Echo/Unary", identity, identity)(payload, timeout=20)
        return {"size": len(value), "ok": value == b"echo:" + payload}

    def fail(ch):
        ch.unary_unary("/test.Echo/Fail", identity, identity)(b"x", timeout=10)
        return {"code": "OK"}

    for name, fn in (("unary", unary), ("server_stream", server_stream), ("bidi", bidi), ("big", big),
                     ("fail", fail)):
        call(channel, results, name, fn)
    print(json.dumps(results))


def unary_only(target, ca):
    creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read()) if ca else None
    channel = (grpc.secure_channel(target, creds, options=(("grpc.ssl_target_name_override", "localhost"),))
               if ca else grpc.insecure_channel(target))
    results = {}
    call(channel, results, "unary", lambda ch: {"value": ch.unary_unary("/test.Echo/Unary", identity, identity)(
        b"hello", timeout=10).decode()})
    print(json.dumps(results))


def limited(target, ca):
    """A 3 MiB call on /limited/… (a route with max_body_bytes: 1MiB, stripped before the service)."""
    creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
    channel = grpc.secure_channel(target, creds, options=(("grpc.ssl_target_name_override", "localhost"),))
    results = {}
    call(channel, results, "small", lambda ch: {"value": ch.unary_unary("/limited/test.Echo/Unary", identity, identity)(
        b"hi", timeout=10).decode()})
    call(channel, results, "big", lambda ch: {"size": len(ch.unary_unary("/limited/test.Echo/Unary", identity, identity)(
        b"x" * (3 * 1024 * 1024), timeout=10))})
    print(json.dumps(results))


def hold(target, release_file):
    channel = grpc.insecure_channel(target)
    released = [False]

    def messages():
        yield b"first"
        deadline = time.time() + 30
        while not os.path.exists(release_file) and time.time() < deadline:
            time.sleep(0.02)
        released[0] = True

    replies = channel.stream_stream("/test.Echo/Bidi", identity, identity)(messages(), timeout=40)
    for r in replies:
        if r == b"bidi:first":
            print("held", flush=True)
    print(json.dumps({"released": released[0]}))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2])
    elif sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif sys.argv[1] == "limited":
        limited(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "hold":
        hold(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "unary":
        unary_only(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
