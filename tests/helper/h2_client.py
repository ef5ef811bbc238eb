#!/usr/bin/python3
"""A raw HTTP/2 client for kinfra's HTTP/2 tests (Debian python3-h2), including the attacks.

    h2_client.py [--h2c] PORT SCENARIO [ARG...]

Connects to 127.0.0.1:PORT (TLS with ALPN h2, certificate not checked; or prior-knowledge h2c),
plays SCENARIO and prints one JSON object: what came back (responses by stream, resets, GOAWAY).
Every scenario is bounded in frames and time (a 10 s socket timeout at most).
"""
import json
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
import hyperframe.frame as hf


def connect(port, h2c):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if h2c:
        return sock
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    tls = ctx.wrap_socket(sock, server_hostname="localhost")
    if tls.selected_alpn_protocol() != "h2":
        print(json.dumps({"error": "ALPN did not select h2", "alpn": tls.selected_alpn_protocol()}))
        sys.exit(0)
    return tls


class Client:
    def __init__(self, port, h2c, validate=True, settings=None):
        self.sock = connect(port, h2c)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.result = {"responses": {}, "resets": {}, "goaway": None, "closed": False, "remote_settings": {}}
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.raw(data)

    def raw(self, data):
        # (A failed send is not the end: what the server sent before it closed is still read.)
        if self.result.get("send_failed"):
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.result["send_failed"] = True

    def response(self, sid):
        return self.result["responses"].setdefault(str(sid), {"headers": [], "body": "", "ended": False,
                                                              "interim": [], "trailers": []})

    def pump(self, until, timeout=10.0):
        """Reads and handles events until `until()` holds, the connection closes, or `timeout`."""
        end = time.monotonic() + timeout
        while not until() and not self.result["closed"] and time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except OSError:
                self.result["closed"] = True
                break
            if not data:
                self.result["closed"] = True
                break
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                self.result["protocol_error"] = str(e)
                self.result["closed"] = True
                break
            for ev in events:
                self.handle(ev)
            self.flush()
        return until()

    def handle(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            self.response(ev.stream_id)["headers"] = [[k, v] for k, v in ev.headers]
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            self.response(ev.stream_id)["interim"].append([[k, v] for k, v in ev.headers])
        elif isinstance(ev, h2.events.TrailersReceived):
            self.response(ev.stream_id)["trailers"] = [[k, v] for k, v in ev.headers]
        elif isinstance(ev, h2.events.DataReceived):
            r = self.response(ev.stream_id)
            r["body"] += ev.data.decode("latin-1")
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.response(ev.stream_id)["ended"] = True
            self.result.setdefault("order", []).append(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            self.result["resets"][str(ev.stream_id)] = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.result["goaway"] = int(ev.error_code)
            self.result["last_stream_id"] = ev.last_stream_id
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.result["remote_settings"][str(int(k))] = v.new_value

    def request(self, path, method="GET", body=None, headers=None, authority="localhost", end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "https"), (":authority", authority)]
        hdrs += headers or []
        self.conn.send_headers(sid, hdrs, end_stream=body is None and end)
        if body is not None:
            self.send_body(sid, body, end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        pos = 0
        while pos < len(body):
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.flush()
                self.pump(lambda: self.conn.local_flow_control_window(sid) > 0, timeout=10)
                if self.result["closed"] or self.conn.local_flow_control_window(sid) <= 0:
                    return
                continue
            chunk = body[pos:pos + window]
            self.conn.send_data(sid, chunk)
            pos += len(chunk)
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def done(self, sids):
        return lambda: all(self.response(s)["ended"] or str(s) in self.result["resets"] for s in sids)

    def print(self):
        print(json.dumps(self.result))


def raw_headers_frame(sid, headers, end_stream=True, end_headers=True):
    f = hf.HeadersFrame(sid)
    f.data = hpack.Encoder().encode(headers)
    flags = set()
    if end_stream:
        flags.add("END_STREAM")
    if end_headers:
        flags.add("END_HEADERS")
    f.flags = flags
    return f.serialize()


def main():
    args = sys.argv[1:]
    h2c = False
    if args[0] == "--h2c":
        h2c = True
        args = args[1:]
    port, scenario, rest = int(args[0]), args[1], args[2:]

    if scenario == "get":  # get PATH [NAME=VALUE ...] (sent as they are: may be invalid)
        c = Client(port, h2c, validate=False)
        headers = [tuple(h.split("=", 1)) for h in rest[1:]]
        authority = "localhost"
        for k, v in headers:
            if k == ":authority":
                authority = v
        headers = [(k, v) for k, v in headers if k != ":authority"]
        sid = c.request(rest[0], headers=headers, authority=authority)
        c.pump(c.done([sid]))
        c.print()
    elif scenario == "seq":  # seq PATH@AUTHORITY...: one after the other on one connection
        c = Client(port, h2c)
        order = []
        for item in rest:
            path, authority = item.rsplit("@", 1)
            sid = c.request(path, authority=authority)
            c.pump(c.done([sid]))
            order.append(str(sid))
        c.result["sequence"] = order
        c.print()
    elif scenario == "expect":  # expect PATH BODY: Expect: 100-continue, the body only after the 100
        c = Client(port, h2c)
        body = rest[1].encode()
        sid = c.request(rest[0], method="POST", end=False,
                        headers=[("expect", "100-continue"), ("content-length", str(len(body)))])
        c.pump(lambda: c.response(sid)["interim"] or c.response(sid)["headers"] or c.response(sid)["ended"])
        c.result["body_sent_after"] = "interim" if c.response(sid)["interim"] else "no interim"
        c.send_body(sid, body)
        c.pump(c.done([sid]))
        c.print()
    elif scenario == "slow-and-fast":  # slow-and-fast FLAGFILE: /slow then /fast on one connection
        c = Client(port, h2c)
        slow = c.request("/slow")
        fast = c.request("/fast")
        c.pump(c.done([fast]))
        open(rest[0], "w").close()  # lets the upstream answer /slow
        c.pump(c.done([slow, fast]))
        c.print()
    elif scenario == "post":  # post PATH SIZE: a body of SIZE bytes (a repeating pattern)
        c = Client(port, h2c)
        size = int(rest[1])
        body = (b"0123456789abcdef" * (size // 16 + 1))[:size]
        sid = c.request(rest[0], method="POST", body=body)
        c.pump(c.done([sid]), timeout=30)
        r = c.response(sid)
        r["body_size"] = len(r["body"])
        r["body_ok"] = r["body"].encode("latin-1").endswith(body)
        r["body"] = r["body"][:2000]
        c.print()
    elif scenario == "many":  # many N [WAVES]: N GETs at once on one connection, WAVES times over
        c = Client(port, h2c)
        ok = matched = 0
        for wave in range(int(rest[1]) if len(rest) > 1 else 1):
            paths = {}
            for i in range(int(rest[0])):
                path = "/many/%d/%d" % (wave, i)
                paths[c.request(path, headers=[("x-stream", path)])] = path
            c.pump(c.done(list(paths)), timeout=20)
            for sid, path in paths.items():
                r = c.response(sid)
                if r["ended"] and [":status", "200"] in r["headers"]:
                    ok += 1
                    # Each stream got its own answer: the body and a field the upstream derives
                    # from the path (streams' state is reused within a connection).
                    if r["body"] == "answer for " + path and ["x-path", path] in r["headers"]:
                        matched += 1
        c.result = {"ok": ok, "matched": matched, "resets": c.result["resets"], "goaway": c.result["goaway"]}
        c.print()
    elif scenario == "rapid-reset":  # rapid-reset N [end]: N HEADERS + RST_STREAM pairs
        c = Client(port, h2c)
        end = len(rest) > 1 and rest[1] == "end"  # complete requests (END_STREAM), then cancelled
        for i in range(int(rest[0])):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "GET"), (":path", "/r"), (":scheme", "https"),
                                      (":authority", "localhost")], end_stream=end)
            c.conn.reset_stream(sid)
            if i % 50 == 49:
                c.flush()
                if c.result.get("send_failed"):
                    break
        c.flush()
        c.pump(lambda: c.result["goaway"] is not None, timeout=5)
        c.print()
    elif scenario in ("ping-flood", "settings-flood"):
        c = Client(port, h2c)
        for i in range(int(rest[0])):
            if scenario == "ping-flood":
                c.conn.ping(i.to_bytes(8, "big"))
            else:
                c.raw(hf.SettingsFrame(0, settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100}).serialize())
            if i % 100 == 99:
                c.flush()
                c.pump(lambda: False, timeout=0.001)
                if c.result["closed"] or c.result.get("send_failed") or c.result["goaway"] is not None:
                    break
        c.flush()
        c.pump(lambda: c.result["goaway"] is not None, timeout=5)
        c.print()
    elif scenario == "empty-data-flood":
        c = Client(port, h2c)
        sid = c.request("/upload", method="POST", end=False)
        for i in range(int(rest[0])):
            c.raw(hf.DataFrame(sid).serialize())
            if i % 100 == 99:
                c.pump(lambda: False, timeout=0.001)
                if c.result["closed"] or c.result.get("send_failed") or c.result["goaway"] is not None:
                    break
        c.pump(lambda: c.result["goaway"] is not None, timeout=5)
        c.print()
    elif scenario == "continuation-flood":  # HEADERS without END_HEADERS, then N CONTINUATIONs
        c = Client(port, h2c)
        c.raw(raw_headers_frame(1, [(":method", "GET"), (":path", "/c"), (":scheme", "https"),
                                    (":authority", "localhost")], end_headers=False))
        for i in range(int(rest[0])):
            f = hf.ContinuationFrame(1)
            f.data = hpack.Encoder().encode([("x-filler", "a" * 10)]) if i % 2 == 0 else b""
            c.raw(f.serialize())
            if c.result.get("send_failed"):
                break
        c.pump(lambda: c.result["goaway"] is not None, timeout=5)
        c.print()
    elif scenario == "too-many-streams":  # too-many-streams N: N streams at once by raw frames
        c = Client(port, h2c)
        c.pump(lambda: "3" in c.result["remote_settings"], timeout=5)
        n = int(rest[0])
        enc = hpack.Encoder()
        for i in range(n):
            f = hf.HeadersFrame(1 + 2 * i)
            f.data = enc.encode([(":method", "GET"), (":path", rest[2] if len(rest) > 2 else "/hold"), (":scheme", "https"),
                                 (":authority", "localhost")])
            f.flags = {"END_STREAM", "END_HEADERS"}
            c.raw(f.serialize())
        # From here on the frames are read raw (the h2 library does not know these streams).
        resets, answered, goaway, buf = {}, set(), None, b""
        end = time.monotonic() + 10
        while len(resets) + len(answered) < n and goaway is None and time.monotonic() < end:
            try:
                data = c.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            while len(buf) >= 9:
                length = int.from_bytes(buf[0:3], "big")
                if len(buf) < 9 + length:
                    break
                ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                payload = buf[9:9 + length]
                buf = buf[9 + length:]
                if ftype == 3:
                    resets[str(sid)] = int.from_bytes(payload[0:4], "big")
                elif ftype == 1:
                    answered.add(sid)
                elif ftype == 7:
                    goaway = int.from_bytes(payload[4:8], "big")
            if len(resets) >= n - int(rest[1]):
                break
        print(json.dumps({"resets": resets, "answered": sorted(answered), "goaway": goaway,
                          "remote_settings": c.result["remote_settings"]}))
    elif scenario == "reset-after":  # reset-after PATH MS: GET PATH, reset it after MS ms
        c = Client(port, h2c)
        sid = c.request(rest[0])
        c.pump(lambda: False, timeout=int(rest[1]) / 1000.0)
        c.conn.reset_stream(sid)
        c.flush()
        c.pump(lambda: False, timeout=0.3)
        c.print()
    elif scenario == "incomplete-headers":  # HEADERS without END_HEADERS, then silence
        c = Client(port, h2c)
        c.raw(raw_headers_frame(1, [(":method", "GET"), (":path", "/i"), (":scheme", "https"),
                                    (":authority", "localhost")], end_headers=False))
        start = time.monotonic()
        buf, reset, goaway, closed = b"", None, None, False
        while time.monotonic() - start < float(rest[0]) and reset is None and not closed:
            c.sock.settimeout(0.2)
            try:
                data = c.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            buf += data
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[0:3], "big"):
                length = int.from_bytes(buf[0:3], "big")
                if buf[3] == 3:
                    reset = int.from_bytes(buf[9:13], "big")
                elif buf[3] == 7:
                    goaway = int.from_bytes(buf[13:17], "big")
                buf = buf[9 + length:]
        print(json.dumps({"reset": reset, "goaway": goaway, "closed": closed,
                          "seconds": round(time.monotonic() - start, 2)}))
    elif scenario == "zero-window":  # zero-window PATH: INITIAL_WINDOW_SIZE 0, then GET PATH
        c = Client(port, h2c, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        sid = c.request(rest[0])
        c.pump(lambda: str(sid) in c.result["resets"] or c.response(sid)["ended"], timeout=10)
        c.print()
    else:
        print(json.dumps({"error": "unknown scenario " + scenario}))


if __name__ == "__main__":
    main()
