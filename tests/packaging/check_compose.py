#!/usr/bin/env python3
"""Packaging.ComposeFile: docker/docker-compose.yml and docker/routes.compose.yaml, checked
without a Docker engine: a `kinfra` service built from docker/Dockerfile publishing 9100 with the
routes file mounted where its command reads it, at least two other services, every service URL in
the routes file naming one of them (with the port it listens on), and `kinfra check` passing on
the routes file (check does not resolve host names, so `api` and `web` need not exist here).

  check_compose.py --compose docker/docker-compose.yml --binary build/test/bin/kinfra
"""
import argparse
import json
import os
import re
import subprocess
import sys

from yaml_subset import load_yaml
from report import report

errors = []


def expect(ok, message):
    if not ok:
        errors.append(message)
    return ok


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compose", required=True)
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    compose_dir = os.path.dirname(os.path.abspath(args.compose))

    doc = load_yaml(args.compose)
    services = (doc or {}).get("services") or {}
    kinfra = services.get("kinfra")
    others = {n: s for n, s in services.items() if n != "kinfra"}
    if not expect(isinstance(kinfra, dict), f"{args.compose}: no `kinfra` service (found {list(services)})"):
        kinfra = {}
    expect(len(others) >= 2, f"{args.compose}: expected two services behind kinfra, found {list(others)}")

    ports = [str(p) for p in kinfra.get("ports") or []]
    expect(any(re.match(r"^(.*:)?9100(/tcp)?$", p) and p.split(":")[-1].split("/")[0] == "9100" for p in ports),
           f"{args.compose}: kinfra does not publish port 9100 (ports: {ports})")

    build = kinfra.get("build") or {}
    if isinstance(build, str):
        build = {"context": build}
    context = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
    dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
    expect(os.path.isfile(dockerfile), f"{args.compose}: kinfra's build names {dockerfile}, which does not exist")

    # The routes file: mounted where kinfra's command reads it.
    command = kinfra.get("command") or []
    if isinstance(command, str):
        command = command.split()
    in_container = command[1] if len(command) >= 2 and command[0] == "run" else None
    expect(in_container, f"{args.compose}: kinfra's command should be [run, <routes.yaml in the container>]")
    routes = None
    for v in kinfra.get("volumes") or []:
        src, _, rest = str(v).partition(":")
        dst = rest.split(":")[0]
        if dst == in_container:
            routes = os.path.normpath(os.path.join(compose_dir, src))
    if not expect(routes and os.path.isfile(routes),
                  f"{args.compose}: no volume mounts an existing routes file at {in_container}"):
        return report(errors, "compose file")

    r = subprocess.run([args.binary, "check", routes], capture_output=True, text=True, timeout=30)
    print(f"kinfra check {os.path.basename(routes)}: exit {r.returncode}: {(r.stdout + r.stderr).strip()}")
    expect(r.returncode == 0, f"kinfra check {routes} failed (exit {r.returncode}): {r.stdout}{r.stderr}")

    # Every service URL in the routes file names a compose service, on the port it listens on.
    cfg = load_yaml(routes)
    urls = []
    for name, svc in (cfg.get("services") or {}).items():
        expect("command" not in svc, f"{routes}: service {name} has a command, but its container runs it")
        urls += [(name, u) for u in ([svc["url"]] if "url" in svc else []) + list(svc.get("targets") or [])]
    expect(len(urls) >= 2, f"{routes}: expected a url for each service behind kinfra, found {urls}")
    for name, url in urls:
        m = re.match(r"^https?://([^/:]+):(\d+)", url)
        if not expect(m, f"{routes}: service {name}: {url} has no host:port"):
            continue
        host, port = m.group(1), m.group(2)
        if not expect(host in others, f"{routes}: service {name} forwards to {host}, which is not a compose service"):
            continue
        env = others[host].get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env if "=" in e)
        if "PORT" in env:
            expect(str(env["PORT"]) == port,
                   f"{routes}: {url}, but the {host} container listens on PORT={env['PORT']}")
        expect(str(env.get("HOST", "0.0.0.0")) not in ("127.0.0.1", "localhost"),
               f"{args.compose}: {host} listens on loopback only: kinfra's container cannot reach it")
    depends = kinfra.get("depends_on") or {}
    for name in others:
        expect(name in depends, f"{args.compose}: kinfra does not depend on {name} (it resolves names at load)")
    return report(errors, "compose file")



if __name__ == "__main__":
    sys.exit(main())
