#!/usr/bin/env python3
"""Packaging.InstallTree: `cmake --install` of this build into a temporary prefix, then checks
the tree: bin/kinfra runs, share/kinfra/routes.yaml and the demo/ it runs are there and pass
`kinfra check`, and share/kinfra/systemd/kinfra.service names this prefix's bin/kinfra.
A second install with DESTDIR checks that the unit names the prefix, not the staging folder.

  check_install.py --cmake /usr/bin/cmake --build-dir build/test
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

errors = []


def expect(ok, message):
    if not ok:
        errors.append(message)
    return ok


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


def check_tree(root, prefix):
    """root: where the files are; prefix: the installation prefix they were configured for."""
    kinfra = os.path.join(root, "bin", "kinfra")
    share = os.path.join(root, "share", "kinfra")
    routes = os.path.join(share, "routes.yaml")
    unit = os.path.join(share, "systemd", "kinfra.service")

    if expect(os.access(kinfra, os.X_OK), f"{kinfra}: missing or not executable"):
        r = run([kinfra, "--version"])
        expect(r.returncode == 0 and "kinfra" in r.stdout + r.stderr,
               f"{kinfra} --version: exit {r.returncode}: {r.stdout}{r.stderr}")
    if expect(os.path.isfile(routes), f"{routes}: missing"):
        text = open(routes, encoding="utf-8").read()
        # Every demo script the default routes.yaml runs is installed next to it.
        scripts = re.findall(r"\b(demo/[\w.-]+\.py)\b", text)
        expect(scripts, f"{routes}: runs no demo/ script (expected the demo services)")
        for s in scripts:
            expect(os.path.isfile(os.path.join(share, s)), f"{routes} runs {s}, which is not installed next to it")
        if os.access(kinfra, os.X_OK):
            r = run([kinfra, "check", routes])
            expect(r.returncode == 0, f"kinfra check {routes}: exit {r.returncode}: {r.stdout}{r.stderr}")
    expect(os.path.isdir(os.path.join(share, "demo")), f"{share}/demo: missing")
    if expect(os.path.isfile(unit), f"{unit}: missing"):
        text = open(unit, encoding="utf-8").read()
        want = f"ExecStart={prefix}/bin/kinfra run /etc/kinfra/routes.yaml"
        expect(re.search(r"^" + re.escape(want) + r"\s*$", text, re.M),
               f"{unit}: no line `{want}`; ExecStart lines: {re.findall(r'^ExecStart=.*$', text, re.M)}")
        expect(re.search(r"^ExecReload=.*\bkill\b.*-HUP\b.*\$MAINPID", text, re.M),
               f"{unit}: no ExecReload sending SIGHUP to $MAINPID")
        expect("@" not in "".join(l for l in text.splitlines() if not l.startswith("#")),
               f"{unit}: a @VARIABLE@ was left unreplaced")
        for line in ("KillMode=mixed", "KillSignal=SIGTERM", "Restart=on-failure", "User=kinfra",
                     "StateDirectory=kinfra", "Environment=KINFRA_STATE_DIR=/var/lib/kinfra"):
            expect(re.search(r"^" + re.escape(line) + r"\s*$", text, re.M), f"{unit}: no `{line}`")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="kinfra-install-")
    try:
        prefix = os.path.join(tmp, "prefix")
        r = run([args.cmake, "--install", args.build_dir, "--prefix", prefix])
        if expect(r.returncode == 0, f"cmake --install: exit {r.returncode}\n{r.stdout}{r.stderr}"):
            print(r.stdout, end="")
            check_tree(prefix, prefix)
            # A plain install is the runtime: no headers, libraries or CMake package (those come
            # with --component development, for programs that embed kinfra).
            for dev in ("include/kinfra/kinfra.hpp", "lib/cmake/kinfra", "lib/libkinfra.a"):
                expect(not os.path.exists(os.path.join(prefix, dev)), f"a plain install installed {dev}")

        # A package build: staged under DESTDIR, but the unit must name where it will really live.
        stage = os.path.join(tmp, "stage")
        final_prefix = "/opt/kinfra-packaging-test"
        r = run([args.cmake, "--install", args.build_dir, "--prefix", final_prefix],
                env=dict(os.environ, DESTDIR=stage))
        if expect(r.returncode == 0, f"DESTDIR={stage} cmake --install: exit {r.returncode}\n{r.stdout}{r.stderr}"):
            check_tree(stage + final_prefix, final_prefix)
            expect(not os.path.exists(final_prefix), f"{final_prefix} exists: DESTDIR was not honoured")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if errors:
        print(f"{len(errors)} problem(s):")
        for e in errors:
            print("  - " + e)
        return 1
    print("install tree: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
