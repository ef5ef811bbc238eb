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

errors = []


def expect(ok, message):
    if not ok:
        errors.append(message)
    return ok


# ---------------------------------------------------------------------------------------------
# YAML: PyYAML when it is installed; otherwise a small parser for the block subset these files
# use (mappings, "- " lists, plain/quoted scalars, [flow, lists], {flow: maps}, comments).

def _scalar(s):
    s = s.strip()
    if s.startswith("[") or s.startswith("{"):
        return _flow(s)
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    return s


def _flow(s):
    """A flow collection: [a, "b", {c: d}] or {a: 1, b: [x]}."""
    pos = 0

    def ws():
        nonlocal pos
        while pos < len(s) and s[pos] in " \t":
            pos += 1

    def value(stops):
        nonlocal pos
        ws()
        c = s[pos]
        if c in "[{":
            close = "]" if c == "[" else "}"
            pos += 1
            items = [] if c == "[" else {}
            while True:
                ws()
                if s[pos] == close:
                    pos += 1
                    return items
                if c == "[":
                    items.append(value(",]"))
                else:
                    k = value(":")
                    pos += 1  # the colon
                    items[k] = value(",}")
                ws()
                if s[pos] == ",":
                    pos += 1
        if c in "\"'":
            end = s.index(c, pos + 1)
            text, pos = s[pos + 1:end], end + 1
            return text
        start = pos
        while pos < len(s) and s[pos] not in stops and not (":" in stops and s[pos:pos + 2] == ": "):
            pos += 1
        return s[start:pos].strip()

    return value("")


def _strip_comment(line):
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def mini_yaml(text):
    lines = []
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if line.strip() and line.strip() != "---":
            lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
    pos = 0

    def block(indent):
        nonlocal pos
        if pos < len(lines) and lines[pos][1].startswith("- "):
            result = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                item = lines[pos][1][2:].strip()
                pos += 1
                if re.match(r"^[^\s\"'\[{][^:]*:(\s|$)", item):  # "- key: value" starts a mapping
                    lines.insert(pos, (indent + 2, item))
                    result.append(block(indent + 2))
                else:
                    result.append(_scalar(item))
            return result
        result = {}
        while pos < len(lines) and lines[pos][0] == indent:
            key, _, value = lines[pos][1].partition(":")
            key = _scalar(key)
            pos += 1
            if value.strip():
                result[key] = _scalar(value)
            elif pos < len(lines) and lines[pos][0] > indent:
                result[key] = block(lines[pos][0])
            elif pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                result[key] = block(indent)
            else:
                result[key] = None
        return result

    return block(lines[0][0]) if lines else {}


def load_yaml(path):
    text = open(path, encoding="utf-8").read()
    if not os.environ.get("KINFRA_TEST_NO_PYYAML"):
        try:
            import yaml  # noqa: PLC0415
            return yaml.safe_load(text)
        except ImportError:
            pass
    return mini_yaml(text)


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
        return report()

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
    return report()


def report():
    if errors:
        print(f"{len(errors)} problem(s):")
        for e in errors:
            print("  - " + e)
        return 1
    print("compose file: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
