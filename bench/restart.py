#!/usr/bin/env python3
"""What a visitor sees while a service restarts under load, four setups side by side in one run.

    python3 bench/restart.py [--kinfra PATH] [--service PATH] [--restarts N] [--keep]

  a  kinfra, `port: auto`: start-first restart (POST /__action__/restart/api on the admin port)
  b  kinfra, fixed port: stop-first restart, requests held while the service comes back
  c  kinfra, fixed port, `hold: off`: the fallback 503 while it restarts
  d  nginx (one worker); the script restarts the service: SIGTERM, wait for the exit, start again

The service is kinfra-test-service with `--listen-after 300` (300 ms of start-up), on ephemeral
127.0.0.1 ports. 8 threads send GET / over keep-alive connections (reconnect on error, 10 s
timeout): 1 s, then N restarts (default 5; each waits until finished, then 0.5 s), then 1 s.
Latencies are over requests sent from the first restart to the end of the last pause. Processes
get their own process group and a tag in their environment; all are killed at the end, even on
error. --keep keeps each setup's temp dir (configs, logs).
"""
import argparse
import collections
import contextlib
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG_KEY, TAG_VALUE = "KINFRA_RESTART_BENCH", f"{os.getpid()}-{time.time_ns()}"  # marks our processes
OK_BODY = b"hello from api\n"
CLIENTS, TIMEOUT, LISTEN_AFTER_MS = 8, 10.0, 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout, what):
    """Calls check() every 20 ms until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{what}: not within {timeout} s")


def fetch(method, url, timeout=2.0):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


class Procs:
    """Processes started by the script: own process group each, tagged environment."""

    def __init__(self):
        self.procs = []

    def start(self, argv, cwd, logname):
        with open(os.path.join(cwd, logname), "ab") as out:
            p = subprocess.Popen(argv, cwd=cwd, env={**os.environ, TAG_KEY: TAG_VALUE}, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=5.0):
        """SIGTERM to its group, SIGKILL after timeout (and to whatever is left in the group)."""
        if p.returncode is not None:
            return  # already reaped: its pid may belong to someone else by now
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)
        tag = f"{TAG_KEY}={TAG_VALUE}".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):  # anything that left its group
            with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    os.kill(int(pid), signal.SIGKILL)


def kinfra_setup(mode, args, procs, work):
    """mode: start-first, stop-first or hold-off. Returns (proxy port, restart function)."""
    port, admin = free_port(), free_port()
    svc = "auto" if mode == "start-first" else str(free_port())
    hold = "\n    hold: off" if mode == "hold-off" else ""
    with open(os.path.join(work, "routes.yaml"), "w") as f:
        f.write(f"""listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 1
timeouts: {{ shutdown: 2s }}
routes:
  - {{ path: /, service: api }}
services:
  api:
    command: {json.dumps([args.service, "--name", "api", "--listen-after", str(LISTEN_AFTER_MS)])}
    env: {{ {TAG_KEY}: "{TAG_VALUE}" }}
    port: {svc}
    health: {{ http: /health, interval: 200ms }}{hold}
""")
    procs.start([args.kinfra, "run", "routes.yaml"], work, "kinfra.log")
    status = lambda: json.loads(fetch("GET", f"http://127.0.0.1:{admin}/__status__")[1])["services"]["api"]
    wait_for(lambda: status()["state"] == "running", 15, "kinfra: api running")

    def restart():
        before = status()
        fetch("POST", f"http://127.0.0.1:{admin}/__action__/restart/api")
        return wait_for(lambda: restart_finished(status(), before, mode == "start-first"), 30, "restart")
    return port, restart


def restart_finished(s, before, start_first):
    """'done' or 'failed' once the restart is over, else None."""
    last = s.get("last_restart")
    if start_first and isinstance(last, dict) and last != before.get("last_restart") \
            and last["result"] == "failed":
        return "failed"
    if s["state"] != "running" or s["pid"] in ("-", before["pid"]):
        return None
    if start_first and isinstance(last, dict):
        return last["result"] if last["result"] == "done" else None
    return "done" if not start_first else "done (pid changed; no last_restart in /__status__)"


def nginx_setup(args, procs, work):
    port, svc_port = free_port(), free_port()
    argv = [args.service, "--name", "api", "--port", str(svc_port), "--listen-after", str(LISTEN_AFTER_MS)]
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://127.0.0.1:{svc_port}; }}
  }}
}}
""")
    healthy = lambda: fetch("GET", f"http://127.0.0.1:{svc_port}/health", 0.5)[0] == 200
    current = [procs.start(argv, work, "service.log")]
    wait_for(healthy, 15, "service healthy")
    procs.start(["/usr/sbin/nginx", "-c", conf, "-p", work + "/", "-e", f"{work}/error.log"], work, "nginx.log")
    wait_for(lambda: fetch("GET", f"http://127.0.0.1:{port}/")[0] == 200, 15, "nginx up")

    def restart():
        procs.stop(current[0], timeout=10)
        current[0] = procs.start(argv, work, "service.log")
        wait_for(healthy, 30, "service back")
        return "done"
    return port, restart


def client(port, stop, records):
    """GET / in a loop on one keep-alive connection; a new one after an error or a close."""
    conn, used = None, 0
    while not stop.is_set():
        if conn is None:
            conn, used = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT), 0
        start = time.monotonic()
        try:
            conn.request("GET", "/")
            r = conn.getresponse()
            body = r.read()
            kind = "ok" if r.status == 200 and body == OK_BODY else "fallback" if r.status == 503 else "other"
            detail = f"{r.status} " + body[:40].decode(errors="replace").replace("\n", " ")
            closed = r.will_close
        except Exception as e:  # reset, refused, timeout, bad response...
            kind, closed = "error", True
            detail = f"{type(e).__name__}: {e} ({'reused' if used else 'new'} connection)"
        used += 1
        records.append((start, time.monotonic() - start, kind, detail))
        if closed:
            conn.close()
            conn = None


def run_load(port, restart, n):
    stop, lists = threading.Event(), [[] for _ in range(CLIENTS)]
    threads = [threading.Thread(target=client, args=(port, stop, lst), daemon=True) for lst in lists]
    for t in threads:
        t.start()
    restarts = []
    try:
        time.sleep(1)
        window_start = time.monotonic()
        for _ in range(n):
            t0 = time.monotonic()
            result = restart()
            restarts.append((t0, time.monotonic() - t0, result))
            time.sleep(0.5)
        window_end = time.monotonic()
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT + 2)
    return sorted(r for lst in lists for r in lst), restarts, (window_start, window_end)


def percentile(sorted_values, p):
    n = len(sorted_values)
    return sorted_values[min(n - 1, int(p / 100 * n))] if n else float("nan")


def summarize(name, records, restarts, window):
    counts = collections.Counter(kind for _, _, kind, _ in records)
    lat = sorted(l * 1000 for s, l, _, _ in records if window[0] <= s < window[1])
    secs = sorted(d for _, d, _ in restarts)
    row = (f"| {name} | {len(records)} | {counts['ok']} | {counts['fallback']} | {counts['other']} | "
           f"{counts['error']} | {percentile(lat, 50):.1f} | {percentile(lat, 99):.1f} | "
           f"{lat[-1] if lat else float('nan'):.1f} | {percentile(secs, 50):.2f} |")
    lines = [f"### {name}", "",
             "restarts (s): " + ", ".join(f"{d:.2f} {r}" for _, d, r in restarts)]
    bad = [r for r in records if r[2] != "ok"]
    for (kind, detail), c in collections.Counter((k, d.split(" (")[0][:60]) for _, _, k, d in bad).most_common(8):
        lines.append(f"- {c} × {kind}: {detail}")
    for kind in sorted({k for _, _, k, _ in bad}):
        for s, l, _, detail in [r for r in bad if r[2] == kind][:2]:
            lines.append(f"  - e.g. {when(s, restarts)}, took {l * 1000:.1f} ms: {kind} {detail}")
    slowest = sorted(records, key=lambda r: -r[1])[:3]
    lines.append("slowest: " + "; ".join(f"{l * 1000:.0f} ms ({k}, {when(s, restarts)})" for s, l, k, _ in slowest))
    return row, lines


def when(sent, restarts):
    i, t0 = min(enumerate(t for t, _, _ in restarts), key=lambda it: abs(it[1] - sent))
    return f"sent {sent - t0:+.3f} s from the start of restart {i + 1}"


SETUPS = [
    ("a: kinfra start-first (port: auto)", functools.partial(kinfra_setup, "start-first")),
    ("b: kinfra stop-first + hold", functools.partial(kinfra_setup, "stop-first")),
    ("c: kinfra stop-first, hold: off", functools.partial(kinfra_setup, "hold-off")),
    ("d: nginx, service restarted by a script", nginx_setup),
]


def log_notes(work):
    """What the proxy logged: nginx's upstream errors by cause, kinfra's warnings and errors."""
    notes = []
    with contextlib.suppress(OSError), open(os.path.join(work, "error.log")) as f:
        causes = collections.Counter(re.findall(r"\] \d+#\d+: \*\d+ (.*?) while", f.read()))
        notes += [f"nginx error.log: {c} × {cause}" for cause, c in causes.most_common()]
    with contextlib.suppress(OSError), open(os.path.join(work, "kinfra.log")) as f:
        bad = [line.strip() for line in f if re.match(r"\S+ (warn|error) ", line)]
        notes += [f"kinfra.log: {len(bad)} warnings/errors"] + [f"  - {line[:160]}" for line in bad[:3]] if bad else []
    return notes


def run_setup(name, setup, args):
    procs, work = Procs(), tempfile.mkdtemp(prefix="kinfra-restart-")
    print(f"{name}: {work}", file=sys.stderr, flush=True)
    try:
        port, restart = setup(args, procs, work)
        records, restarts, window = run_load(port, restart, args.restarts)
    except OSError as e:  # a timeout or an unreachable proxy: report it, go on; logs stay in work
        return f"| {name} | failed: {e} |" + " |" * 8, [f"### {name}", "", f"failed: {e}, logs in {work}"]
    finally:
        procs.stop_all()
    row, lines = summarize(name, records, restarts, window)
    lines += log_notes(work)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return row, lines


def on_signal(signum, _frame):  # SystemExit: the finally blocks still stop every process
    raise SystemExit(f"bench/restart.py: stopped ({signal.Signals(signum).name})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinfra", default=os.path.join(ROOT, "build/test/bin/kinfra"))
    ap.add_argument("--service", default=os.path.join(ROOT, "build/test/tests/kinfra-test-service"))
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (configs and logs)")
    args = ap.parse_args()
    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.alarm(120 + 4 * 45 * args.restarts)  # 4 setups, at most ~45 s per restart
    nginx_version = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True).stderr.strip()
    mtime = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(args.kinfra)))
    rows, details = [], []
    for name, setup in SETUPS:
        row, lines = run_setup(name, setup, args)
        rows.append(row)
        details += [""] + lines
    signal.alarm(0)
    print(f"Run: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, {os.cpu_count()} cores, "
          f"kinfra {args.kinfra} (built {mtime}), {nginx_version.replace('nginx version: ', '')}")
    print(f"{CLIENTS} clients, keep-alive, GET /; 1 s, {args.restarts} restarts (each + 0.5 s), 1 s; "
          f"service start-up {LISTEN_AFTER_MS} ms. Latency over requests issued during the restarts.\n")
    print("| setup | requests | 200 | 503 / fallback | other status | connection errors | "
          "p50 ms | p99 ms | max ms | restart s (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print("\n".join(details))


if __name__ == "__main__":
    main()
