#!/usr/bin/env python3
"""examples/embed, built against kinfra installed in a temporary prefix, and run.

1. cmake --install <build dir> --prefix <tmp>/prefix --component development
2. cmake -S examples/embed -B <tmp>/build -DCMAKE_PREFIX_PATH=<tmp>/prefix; cmake --build
3. runs it on ephemeral ports with a 2 s "build", and checks over HTTP (127.0.0.1 only): the api
   route answers; while the frontend builds, / is the loading page with the pushed steps and
   /__status__ shows them; then the frontend runs and / is its answer; the dashboard works.
4. SIGTERM: exit 0, and the services are gone.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


def wait(what, fn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError(" ".join(cmd) + " failed:\n" + r.stdout + r.stderr)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmake", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--example", required=True)
    ap.add_argument("--compiler", required=True)
    ap.add_argument("--cxx-flags", default="")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kinfra-embed-")
    proc = None
    try:
        prefix = os.path.join(tmp, "prefix")
        run([a.cmake, "--install", a.build_dir, "--prefix", prefix, "--component", "development"])
        for f in ["include/kinfra/kinfra.hpp", "lib/cmake/kinfra/kinfraConfig.cmake", "lib/libkinfra.a"]:
            if not os.path.exists(os.path.join(prefix, f)):
                alt = f.replace("lib/", "lib/x86_64-linux-gnu/")
                if not os.path.exists(os.path.join(prefix, alt)):
                    raise AssertionError("not installed: " + f)
        build = os.path.join(tmp, "build")
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        run([a.cmake, "-S", a.example, "-B", build, *gen, "-DCMAKE_BUILD_TYPE=Release",
             "-DCMAKE_CXX_COMPILER=" + a.compiler, "-DCMAKE_PREFIX_PATH=" + prefix,
             "-DCMAKE_CXX_FLAGS=" + a.cxx_flags, "-DCMAKE_EXE_LINKER_FLAGS=" + a.cxx_flags])
        run([a.cmake, "--build", build])
        exe = os.path.join(build, "embed_example")

        api_port, web_port = free_port(), free_port()
        proc = subprocess.Popen([exe, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--api-port", str(api_port),
                                 "--web-port", str(web_port), "--build-seconds", "3"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp,
                                start_new_session=True)
        # kinfra's own log lines (spdlog's default logger) may come first.
        seen = ""
        deadline = time.time() + 30
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            if line.startswith("listening on "):
                break
        if not line.startswith("listening on "):
            proc.kill()
            raise AssertionError("the example did not start:\n" + seen + proc.stderr.read())
        base = "http://" + line.split()[-1]

        # While the frontend builds: the loading page with the steps the program pushed.
        status, body = wait("the loading page", lambda: (lambda r: r if r[0] == 503 and "Compiling assets" in r[1]
                                                         else None)(get(base + "/")))
        doc = json.loads(get(base + "/__status__")[1])
        fe = doc["services"]["frontend"]
        if fe["state"] != "starting" or len(fe["steps"]) != 3:
            raise AssertionError("frontend while building: " + json.dumps(fe))
        # The api runs from the start, behind /api (python's http.server: /api/ is not one of its
        # folders, so its own 404 page proves the request reached it).
        wait("the api", lambda: (lambda r: r[0] == 404 and "File not found" in r[1])(get(base + "/api/")))
        # Then the build ends, the program starts the frontend, and / is its page.
        wait("the frontend", lambda: get(base + "/")[0] == 200, timeout=30)
        doc = json.loads(get(base + "/__status__")[1])
        if doc["services"]["frontend"]["state"] != "running":
            raise AssertionError("frontend after the build: " + json.dumps(doc["services"]["frontend"]))
        if get(base + "/kinfra")[0] != 200:
            raise AssertionError("no dashboard")
        pids = [doc["services"][s]["pid"] for s in ("api", "frontend")]

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        if code != 0:
            raise AssertionError("exit code %d after SIGTERM:\n%s" % (code, proc.stderr.read()))
        for pid in pids:
            if os.path.exists("/proc/" + pid):
                raise AssertionError("service pid %s still running after the example stopped" % pid)
        print("example: built with find_package(kinfra), served, pushed progress, stopped cleanly")
        return 0
    except AssertionError as e:
        print("FAIL: " + str(e), file=sys.stderr)
        return 1
    finally:
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
