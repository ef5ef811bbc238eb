#!/usr/bin/env python3
"""Packaging.InstallTree: `cmake --install` of this build into a temporary prefix, then checks
the tree: bin/kinfra runs, share/kinfra/routes.yaml and the demo/ it runs are there and pass
`kinfra check`, and share/kinfra/systemd/kinfra.service names this prefix's bin/kinfra.
A second install with DESTDIR checks that the unit names the prefix, not the staging folder, and
that nothing only the Debian package installs (/etc/kinfra, /lib/systemd) comes with a plain install.

The installed routes.yaml must be dist/routes.yaml byte for byte (never the routes.yaml at the top
of the checkout, which users edit), listen on loopback only, and agree with the top routes.yaml as
committed in git (HEAD) in everything but `listen` (skipped outside a git checkout).

  check_install.py --cmake /usr/bin/cmake --build-dir build/test --source-dir .
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from default_routes import committed_root_routes, differences, is_loopback_listen
from yaml_subset import parse
from report import report

errors = []


def expect(ok, message):
    if not ok:
        errors.append(message)
    return ok


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


def check_tree(root, prefix, dist_routes):
    """root: where the files are; prefix: the installation prefix they were configured for;
    dist_routes: the bytes of dist/routes.yaml."""
    kinfra = os.path.join(root, "bin", "kinfra")
    share = os.path.join(root, "share", "kinfra")
    routes = os.path.join(share, "routes.yaml")
    unit = os.path.join(share, "systemd", "kinfra.service")

    if expect(os.access(kinfra, os.X_OK), f"{kinfra}: missing or not executable"):
        r = run([kinfra, "--version"])
        expect(r.returncode == 0 and "kinfra" in r.stdout + r.stderr,
               f"{kinfra} --version: exit {r.returncode}: {r.stdout}{r.stderr}")
    if expect(os.path.isfile(routes), f"{routes}: missing"):
        with open(routes, "rb") as f:
            expect(f.read() == dist_routes, f"{routes} is not dist/routes.yaml (byte for byte)")
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
    ap.add_argument("--source-dir", required=True, help="the repository (dist/routes.yaml, routes.yaml)")
    args = ap.parse_args()

    dist_path = os.path.join(args.source_dir, "dist", "routes.yaml")
    with open(dist_path, "rb") as f:
        dist_routes = f.read()
    dist_doc = parse(dist_routes.decode("utf-8"))
    expect(is_loopback_listen(dist_doc),
           f"{dist_path}: the installed default must listen on loopback only, found listen: {dist_doc.get('listen')!r}")
    root_doc, why_not = committed_root_routes(args.source_dir)
    if root_doc is None:
        print(f"not compared with the committed routes.yaml: {why_not}")
    else:
        for d in differences(dist_doc, root_doc, "dist/routes.yaml", "HEAD:routes.yaml", ignore_top=("listen",)):
            errors.append(f"dist/routes.yaml differs from the committed routes.yaml (update one or the other): {d}")

    tmp = tempfile.mkdtemp(prefix="kinfra-install-")
    try:
        # A package build: staged under DESTDIR, but the unit must name where it will really live.
        # First, so that a plain install with the Debian package's absolute destinations would land
        # in the staging folder, not in the real /etc.
        stage = os.path.join(tmp, "stage")
        final_prefix = "/opt/kinfra-packaging-test"
        ok_to_install_plain = False
        r = run([args.cmake, "--install", args.build_dir, "--prefix", final_prefix],
                env=dict(os.environ, DESTDIR=stage))
        if expect(r.returncode == 0, f"DESTDIR={stage} cmake --install: exit {r.returncode}\n{r.stdout}{r.stderr}"):
            check_tree(stage + final_prefix, final_prefix, dist_routes)
            # The Debian package's own files (component deb) are not part of a plain install.
            leaked = [p for p in ("etc/kinfra", "lib/systemd", "usr/lib/systemd") if os.path.exists(os.path.join(stage, p))]
            for p in leaked:
                errors.append(f"a plain install installed /{p} (only the Debian package should); the install "
                              "without DESTDIR is not tried, since it would write there")
            ok_to_install_plain = not leaked
            expect(not os.path.exists(final_prefix), f"{final_prefix} exists: DESTDIR was not honoured")

        prefix = os.path.join(tmp, "prefix")
        r = run([args.cmake, "--install", args.build_dir, "--prefix", prefix]) if ok_to_install_plain else None
        if r is not None and expect(r.returncode == 0, f"cmake --install: exit {r.returncode}\n{r.stdout}{r.stderr}"):
            print(r.stdout, end="")
            check_tree(prefix, prefix, dist_routes)
            # A plain install is the runtime: no headers, libraries or CMake package (those come
            # with --component development, for programs that embed kinfra).
            for dev in ("include/kinfra/kinfra.hpp", "lib/cmake/kinfra", "lib/libkinfra.a"):
                expect(not os.path.exists(os.path.join(prefix, dev)), f"a plain install installed {dev}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    return report(errors, "install tree")


if __name__ == "__main__":
    sys.exit(main())
