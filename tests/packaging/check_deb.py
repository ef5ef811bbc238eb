#!/usr/bin/env python3
"""Packaging.DebianPackage: `cpack -G DEB` of this build (its CPackConfig.cmake, cmake/package.cmake)
into a temporary folder, then checks the package without installing it:
  - control fields (`dpkg-deb --field`): name, version, architecture, maintainer, description,
    Depends with adduser and (when dpkg-shlibdeps is there) the package of every library the
    packaged kinfra links, Recommends python3;
  - control files (`dpkg-deb -e`): conffiles lists exactly /etc/kinfra/routes.yaml; postinst, prerm
    and postrm are dist/deb's, executable, and pass `sh -n`. Run with every command they call
    replaced by a stub that only logs (and /var/lib/kinfra by a temporary folder): postinst creates
    the kinfra user and group (home /var/lib/kinfra, nologin shell) when missing, neither enables
    nor starts the service on a first install, and on an upgrade only try-restarts it; prerm stops
    it on removal only; postrm purge removes kinfra's own state, and its folder only once empty;
  - contents (`dpkg-deb --contents`): /usr/bin/kinfra, /usr/share/kinfra/routes.yaml and every demo
    script, the unit in /lib/systemd/system, /etc/kinfra/routes.yaml, all owned by root; no
    headers, libraries, CMake package or example unit;
  - lintian, when installed: its errors fail the test only for the tags in LINTIAN_FATAL;
  - extracted (`dpkg-deb -x`) into a scratch folder: share/kinfra/routes.yaml is dist/routes.yaml and
    /etc/kinfra/routes.yaml is dist/deb/routes.yaml, byte for byte, the latter the same as the
    former but for `cwd: /usr/share/kinfra`; the unit runs /usr/bin/kinfra on /etc/kinfra/routes.yaml
    as kinfra; the extracted kinfra prints its version, and `kinfra check` passes on both
    routes.yaml (the /etc one with /usr/share/kinfra mapped to the scratch folder).

  check_deb.py --cpack /usr/bin/cpack --build-dir build/test --source-dir . --version 0.1.0
Exit 0 when everything holds, 1 with every problem listed, 77 (skipped) without cpack or dpkg-deb,
and in sanitizer builds (the package is never one).
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from default_routes import differences, is_loopback_listen, rewrite_cwd
from yaml_subset import parse
from report import report

# lintian errors (Debian 12's lintian) that mean this package is built wrong: its files, control
# data, conffiles or maintainer scripts. Other tags are printed and do not fail the test, among them
# the errors no-copyright-file and no-changelog: kinfra has no license text or Debian changelog to
# ship yet.
LINTIAN_FATAL = {
    # files and their owners and modes
    "wrong-file-owner-uid-or-gid", "unstripped-binary-or-object", "arch-independent-package-contains-binary-or-object",
    "dir-or-file-in-opt", "dir-in-usr-local", "file-in-usr-local", "systemd-service-in-odd-location",
    # control data and conffiles
    "control-file-has-bad-owner", "control-file-has-bad-permissions", "malformed-deb-archive", "malformed-contact",
    "bogus-mail-host", "mail-address-loops-or-bounces", "missing-dependency-on-libc",
    "missing-dependency-on-libstdc++", "file-in-etc-not-marked-as-conffile", "non-etc-file-marked-as-conffile",
    "file-in-usr-marked-as-conffile", "conffile-has-bad-file-type", "relative-conffile", "duplicate-conffile",
    "missing-conffile", "unknown-conffile-instruction",
    # maintainer scripts
    "maintainer-shell-script-fails-syntax-check", "maintainer-script-lacks-home-in-adduser",
    "maintainer-script-calls-init-script-directly", "maintainer-script-calls-service",
}

errors = []


def expect(ok, message):
    if not ok:
        errors.append(message)
    return ok


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def control_fields(deb):
    """{field: value} of the package's control file (continuation lines joined with newlines)."""
    r = run(["dpkg-deb", "--field", deb])
    if not expect(r.returncode == 0, f"dpkg-deb --field: exit {r.returncode}: {r.stderr}"):
        return {}
    fields, last = {}, None
    for line in r.stdout.splitlines():
        if line[:1] in (" ", "\t") and last:
            fields[last] += "\n" + line.strip()
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last] = value.strip()
    return fields


def relation_names(value):
    """Package names of a Depends/Recommends field: 'libc6 (>= 2.34), adduser' -> {'libc6', 'adduser'}."""
    names = set()
    for part in (value or "").split(","):
        for alternative in part.split("|"):
            name = re.split(r"[\s(:]", alternative.strip(), maxsplit=1)[0]
            if name:
                names.add(name)
    return names


def contents(deb):
    """{path: (mode string, owner)} from `dpkg-deb --contents`, paths as './usr/bin/kinfra'."""
    r = run(["dpkg-deb", "--contents", deb])
    if not expect(r.returncode == 0, f"dpkg-deb --contents: exit {r.returncode}: {r.stderr}"):
        return {}
    entries = {}
    for line in r.stdout.splitlines():
        # -rwxr-xr-x root/root   4075552 2025-01-01 00:00 ./usr/bin/kinfra   (or "… -> target")
        m = re.match(r"^(\S+)\s+(\S+)\s+\d+\s+\S+\s+\S+\s+(\./\S*)", line)
        if m:
            entries[m.group(3).rstrip("/") or "."] = (m.group(1), m.group(2))
    return entries


# ---------------------------------------------------------------------------------------------

def check_fields(fields, version, arch, packaged_kinfra):
    expect(fields.get("Package") == "kinfra", f"Package: {fields.get('Package')!r}, expected kinfra")
    expect(fields.get("Version") == version, f"Version: {fields.get('Version')!r}, expected the project's {version}")
    if arch:
        expect(fields.get("Architecture") == arch, f"Architecture: {fields.get('Architecture')!r}, expected {arch}")
    expect(re.match(r"^[^<>]+ <[^@\s]+@[^>\s]+>$", fields.get("Maintainer", "")),
           f"Maintainer: {fields.get('Maintainer')!r}, expected 'Name <address>'")
    description = fields.get("Description", "")
    expect(description and len(description.splitlines()) > 1 and len(description.splitlines()[0]) <= 80,
           f"Description: expected a synopsis line (at most 80 characters) and a long description, found {description!r}")
    expect(fields.get("Section"), "no Section")
    depends = relation_names(fields.get("Depends"))
    expect("adduser" in depends, f"Depends: {fields.get('Depends')!r} lacks adduser (postinst runs adduser)")
    expect("python3" in relation_names(fields.get("Recommends")),
           f"Recommends: {fields.get('Recommends')!r} lacks python3 (the demo services)")
    if shutil.which("dpkg-shlibdeps") and shutil.which("ldd") and os.path.exists(packaged_kinfra):
        # The same ldd + dpkg -S mapping as the Dockerfile check.
        from check_dockerfile import required_packages  # noqa: PLC0415
        need, problems = required_packages(packaged_kinfra, sanitizer_build=False)
        errors.extend(problems)
        for pkg, libs in sorted(need.items()):
            # dpkg-shlibdeps may name a virtual package the library's package provides
            # (libspdlog1.10 provides libspdlog1.10-fmt9).
            names = {pkg} | relation_names(run(["dpkg-query", "-W", "-f=${Provides}", pkg]).stdout)
            expect(names & depends, f"kinfra links {', '.join(os.path.basename(l) for l in libs)} from {pkg}, "
                                    f"which Depends does not name: {fields.get('Depends')!r}")
    else:
        print("library dependencies not checked: dpkg-shlibdeps (dpkg-dev) or ldd missing")


def check_control(control_dir, source_dir):
    conffiles = os.path.join(control_dir, "conffiles")
    if expect(os.path.isfile(conffiles), "no conffiles control file"):
        listed = [l.strip() for l in open(conffiles, encoding="utf-8") if l.strip()]
        expect(listed == ["/etc/kinfra/routes.yaml"], f"conffiles lists {listed}, expected [/etc/kinfra/routes.yaml]")
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(control_dir, script)
        if not expect(os.path.isfile(path), f"no {script} maintainer script"):
            continue
        expect(read_bytes(path) == read_bytes(os.path.join(source_dir, "dist", "deb", script)),
               f"{script} is not dist/deb/{script}")
        mode = os.stat(path).st_mode & 0o777
        expect(mode == 0o755, f"{script} has mode {mode:o}, expected 755")
        text = open(path, encoding="utf-8").read()
        expect(text.startswith("#!/bin/sh\n"), f"{script} does not start with #!/bin/sh")
        expect(re.search(r"^set -e$", text, re.M), f"{script} has no `set -e`")
        r = run(["sh", "-n", path])
        expect(r.returncode == 0, f"sh -n {script}: exit {r.returncode}: {r.stderr}")
    if os.path.isfile(os.path.join(control_dir, "postinst")):
        check_postinst_behaviour(os.path.join(control_dir, "postinst"))
    if os.path.isfile(os.path.join(control_dir, "prerm")) and os.path.isfile(os.path.join(control_dir, "postrm")):
        check_prerm_postrm_behaviour(os.path.join(control_dir, "prerm"), os.path.join(control_dir, "postrm"))


def check_postinst_behaviour(postinst):
    """Runs postinst with PATH holding only stubs that log their arguments (nothing on this machine
    changes), as on a machine where systemd runs (its /run/systemd/system test pointed at a folder
    that exists), for a first install and for an upgrade."""
    with tempfile.TemporaryDirectory(prefix="kinfra-postinst-") as stubs:
        log = os.path.join(stubs, "calls.log")
        systemd_dir = os.path.join(stubs, "run", "systemd", "system")
        os.makedirs(systemd_dir)
        script = os.path.join(stubs, "postinst")
        with open(script, "w", encoding="utf-8") as f:
            f.write(open(postinst, encoding="utf-8").read().replace("/run/systemd/system", systemd_dir))

        def stub(name, body):
            path = os.path.join(stubs, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{body}\nexit 0\n')
            os.chmod(path, 0o755)

        def run_postinst(*args):
            if os.path.exists(log):
                os.remove(log)
            r = run(["/bin/sh", script, *args], env={"PATH": stubs})
            calls = open(log, encoding="utf-8").read().splitlines() if os.path.exists(log) else []
            expect(r.returncode == 0, f"postinst {' '.join(args)}: exit {r.returncode}: {r.stdout}{r.stderr}")
            return calls

        for name in ("addgroup", "adduser", "deb-systemd-invoke", "systemctl"):
            stub(name, "")
        # A first install: no kinfra user or group; deb-systemd-helper has never seen the unit, and
        # says so as the real one does (not debian-installed; was-enabled is true for a new unit).
        stub("getent", "exit 2")
        stub("deb-systemd-helper", 'case "$*" in debian-installed*) exit 1;; *was-enabled*) exit 0;; esac')
        calls = run_postinst("configure", "")
        print("postinst configure (first install) called: " + "; ".join(calls))
        adduser = [c.split() for c in calls if c.startswith("adduser ")]
        if expect(len(adduser) == 1, f"postinst configure on a machine without the kinfra user: expected one "
                                     f"adduser call, got {calls}"):
            a = adduser[0]
            for want in (["--system"], ["--home", "/var/lib/kinfra"], ["--shell", "/usr/sbin/nologin"],
                         ["--ingroup", "kinfra"]):
                expect(any(a[i:i + len(want)] == want for i in range(len(a))),
                       f"postinst: adduser without {' '.join(want)}: {' '.join(a)}")
            expect(a[-1] == "kinfra", f"postinst: adduser does not create kinfra: {' '.join(a)}")
        expect(any(c.startswith("addgroup ") and c.split()[-1] == "kinfra" and "--system" in c for c in calls),
               f"postinst: no `addgroup --system kinfra`: {calls}")
        for c in calls:
            expect(not re.match(r"^deb-systemd-helper (--quiet )?enable\b", c),
                   f"postinst enables the service on a first install: {c}")
            expect(not c.startswith("deb-systemd-invoke "), f"postinst starts the service on a first install: {c}")

        # An upgrade of an installed package whose service the administrator did not enable: the
        # user exists; the running service (if any) is restarted, nothing else is started.
        stub("getent", 'echo "kinfra:x:999:999::/var/lib/kinfra:/usr/sbin/nologin"')
        stub("deb-systemd-helper", 'case "$*" in debian-installed*) exit 0;; *was-enabled*) exit 1;; esac')
        calls = run_postinst("configure", "0.0.1")
        print("postinst configure 0.0.1 (an upgrade, user present) called: " + "; ".join(calls))
        expect(not any(c.startswith(("adduser ", "addgroup ")) for c in calls),
               f"postinst creates the kinfra user or group again on an upgrade: {calls}")
        invoked = [c for c in calls if c.startswith("deb-systemd-invoke ")]
        expect(invoked == ["deb-systemd-invoke try-restart kinfra.service"],
               f"postinst on an upgrade should only try-restart kinfra.service (restart it if it runs), "
               f"called: {invoked}")
        for c in calls:
            expect(not re.match(r"^deb-systemd-helper (--quiet )?enable\b", c),
                   f"postinst enables a service the administrator did not enable, on an upgrade: {c}")


def check_prerm_postrm_behaviour(prerm, postrm):
    """prerm stops the service on removal only; postrm purge removes kinfra's own state (ca/, tls/)
    and its folder only when nothing else is in it. Run like postinst above, with /var/lib/kinfra
    pointed at a temporary folder (rm and rmdir are the real ones, everything else a stub)."""
    with tempfile.TemporaryDirectory(prefix="kinfra-prerm-") as stubs:
        log = os.path.join(stubs, "calls.log")
        systemd_dir = os.path.join(stubs, "run", "systemd", "system")
        state = os.path.join(stubs, "var-lib-kinfra")
        os.makedirs(systemd_dir)
        for name in ("deb-systemd-invoke", "deb-systemd-helper", "systemctl"):
            with open(os.path.join(stubs, name), "w", encoding="utf-8") as f:
                f.write(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 0\n')
            os.chmod(os.path.join(stubs, name), 0o755)
        for name in ("rm", "rmdir"):
            if shutil.which(name):
                os.symlink(shutil.which(name), os.path.join(stubs, name))

        def run_script(path, *args):
            if os.path.exists(log):
                os.remove(log)
            copy = os.path.join(stubs, os.path.basename(path))
            with open(copy, "w", encoding="utf-8") as f:
                f.write(open(path, encoding="utf-8").read().replace("/run/systemd/system", systemd_dir)
                        .replace("/var/lib/kinfra", state))
            r = run(["/bin/sh", copy, *args], env={"PATH": stubs})
            expect(r.returncode == 0, f"{os.path.basename(path)} {' '.join(args)}: exit {r.returncode}: {r.stdout}{r.stderr}")
            return open(log, encoding="utf-8").read().splitlines() if os.path.exists(log) else []

        calls = run_script(prerm, "remove")
        expect("deb-systemd-invoke stop kinfra.service" in calls, f"prerm remove does not stop kinfra.service: {calls}")
        calls = run_script(prerm, "upgrade", "0.2.0")
        expect(not calls, f"prerm upgrade should leave the service to postinst's try-restart, called: {calls}")

        for extra in (True, False):
            for d in ("ca", "tls"):
                os.makedirs(os.path.join(state, d), exist_ok=True)
                open(os.path.join(state, d, "x"), "w").close()
            if extra:
                open(os.path.join(state, "yours"), "w").close()
            calls = run_script(postrm, "purge")
            expect("deb-systemd-helper purge kinfra.service" in calls, f"postrm purge: no deb-systemd-helper purge: {calls}")
            left = sorted(os.listdir(state)) if os.path.isdir(state) else None
            if extra:
                expect(left == ["yours"], f"postrm purge should remove ca/ and tls/ and keep other files, left {left}")
                shutil.rmtree(state, ignore_errors=True)
            else:
                expect(left is None, f"postrm purge should remove /var/lib/kinfra once empty, left {left}")


def check_contents(entries, source_dir):
    unit = next((p for p in ("./lib/systemd/system/kinfra.service", "./usr/lib/systemd/system/kinfra.service")
                 if p in entries), None)
    expect(unit, "no systemd unit (/lib/systemd/system/kinfra.service)")
    required = ["./usr/bin/kinfra", "./usr/share/kinfra/routes.yaml", "./etc/kinfra/routes.yaml"]
    required += ["./usr/share/kinfra/demo/" + os.path.basename(p)
                 for p in sorted(glob.glob(os.path.join(source_dir, "demo", "*.py")))]
    for path in required:
        expect(path in entries, f"{path[1:]} is not in the package")
    if "./usr/bin/kinfra" in entries:
        mode = entries["./usr/bin/kinfra"][0]
        expect(mode == "-rwxr-xr-x", f"/usr/bin/kinfra has mode {mode}, expected -rwxr-xr-x")
    for path, (mode, owner) in sorted(entries.items()):
        expect(owner == "root/root", f"{path[1:]} is owned by {owner}, expected root/root")
        expect(path == "." or re.match(r"^\./(usr|etc|lib)(/|$)", path), f"{path[1:]}: outside /usr, /etc and /lib")
        for bad, why in ((r"^\./usr/include", "headers"), (r"^\./usr/lib/cmake", "the CMake package"),
                         (r"\.a$", "a static library"), (r"^\./usr/share/kinfra/systemd", "the example unit"),
                         (r"^\./usr/local", "/usr/local"), (r"__pycache__", "Python caches")):
            expect(not re.search(bad, path), f"{path[1:]}: {why} in the package")
    return unit


def check_lintian(deb, deadline):
    if shutil.which("lintian") is None:
        print("lintian: not installed (scripts/install-deps.sh --test installs it): not run")
        return
    budget = deadline - time.monotonic()
    if budget < 10:
        print(f"lintian: not run, only {budget:.0f} s left of this test's time")
        return
    try:
        r = run(["lintian", "--no-cfg", "--tag-display-limit", "0", deb], timeout=budget)
    except subprocess.TimeoutExpired:
        print(f"lintian: still running after {budget:.0f} s: not checked")
        return
    tags = []
    for line in r.stdout.splitlines():
        m = re.match(r"^([EWIPXO]): kinfra(?: [a-z]+)?: (\S+)(.*)$", line)
        if m:
            tags.append((m.group(1), m.group(2), m.group(3).strip()))
    # Exit 0: nothing to say; 2: it found something (--fail-on's default, errors); 1: lintian itself
    # failed, which says nothing about the package (the dpkg-deb checks above stand).
    if r.returncode not in (0, 2):
        print(f"lintian: could not check the package (exit {r.returncode}): {r.stderr.strip()[-500:]}")
        return
    print(f"lintian: exit {r.returncode}, {len(tags)} tag(s):")
    for level, tag, extra in tags:
        print(f"  {level}: {tag} {extra}".rstrip())
    for level, tag, extra in tags:
        if level == "E" and tag in LINTIAN_FATAL:
            errors.append(f"lintian: E: {tag} {extra}".rstrip())


def check_extracted(root, source_dir, version, unit):
    kinfra = os.path.join(root, "usr", "bin", "kinfra")
    share = os.path.join(root, "usr", "share", "kinfra")
    default_path = os.path.join(share, "routes.yaml")
    etc_path = os.path.join(root, "etc", "kinfra", "routes.yaml")
    dist = os.path.join(source_dir, "dist")

    if expect(os.path.isfile(default_path), "/usr/share/kinfra/routes.yaml: not extracted"):
        expect(read_bytes(default_path) == read_bytes(os.path.join(dist, "routes.yaml")),
               "/usr/share/kinfra/routes.yaml is not dist/routes.yaml (byte for byte)")
    if expect(os.path.isfile(etc_path), "/etc/kinfra/routes.yaml: not extracted"):
        expect(read_bytes(etc_path) == read_bytes(os.path.join(dist, "deb", "routes.yaml")),
               "/etc/kinfra/routes.yaml is not dist/deb/routes.yaml (byte for byte)")
        etc_text = open(etc_path, encoding="utf-8").read()
        etc_doc = parse(etc_text)
        default_doc = parse(open(os.path.join(dist, "routes.yaml"), encoding="utf-8").read())
        for d in differences(etc_doc, default_doc, "/etc/kinfra/routes.yaml", "dist/routes.yaml",
                             ignore_service_keys=("cwd",)):
            errors.append(f"/etc/kinfra/routes.yaml is not the default routes.yaml (but for cwd): {d}")
        expect(is_loopback_listen(etc_doc),
               f"/etc/kinfra/routes.yaml must listen on loopback only, found listen: {etc_doc.get('listen')!r}")
        for name, svc in (etc_doc.get("services") or {}).items():
            if not isinstance(svc, dict) or "command" not in svc:
                continue
            expect(svc.get("cwd") == "/usr/share/kinfra",
                   f"/etc/kinfra/routes.yaml: service {name} runs in {svc.get('cwd')!r}, not /usr/share/kinfra "
                   "(where its demo/ is installed)")
            command = svc["command"] if isinstance(svc["command"], list) else str(svc["command"]).split()
            for word in command:
                if re.match(r"^demo/[\w.-]+\.py$", str(word)):
                    expect(os.path.isfile(os.path.join(share, word)),
                           f"/etc/kinfra/routes.yaml: service {name} runs {word}, not in /usr/share/kinfra")

    if unit:
        text = open(os.path.join(root, unit), encoding="utf-8").read()
        want = "ExecStart=/usr/bin/kinfra run /etc/kinfra/routes.yaml"
        expect(re.search(r"^" + re.escape(want) + r"\s*$", text, re.M),
               f"{unit[1:]}: no line `{want}`; ExecStart lines: {re.findall(r'^ExecStart=.*$', text, re.M)}")
        for line in ("User=kinfra", "Group=kinfra", "KillMode=mixed", "StateDirectory=kinfra",
                     "WantedBy=multi-user.target"):
            expect(re.search(r"^" + re.escape(line) + r"\s*$", text, re.M), f"{unit[1:]}: no `{line}`")
        expect("@" not in text, f"{unit[1:]}: a @VARIABLE@ was left unreplaced")
        expect("sudo cp" not in text, f"{unit[1:]}: has the example unit's setup steps, not the package's")

    if not expect(os.access(kinfra, os.X_OK), "/usr/bin/kinfra: not extracted or not executable"):
        return
    r = run([kinfra, "--version"])
    expect(r.returncode == 0 and version in r.stdout + r.stderr,
           f"usr/bin/kinfra --version: exit {r.returncode}, expected {version}: {r.stdout}{r.stderr}")
    print(f"usr/bin/kinfra --version: {(r.stdout + r.stderr).strip()}")
    if os.path.isfile(default_path):
        r = run([kinfra, "check", default_path])
        print(f"kinfra check usr/share/kinfra/routes.yaml: exit {r.returncode}: {(r.stdout + r.stderr).strip()}")
        expect(r.returncode == 0, f"kinfra check /usr/share/kinfra/routes.yaml: exit {r.returncode}: {r.stdout}{r.stderr}")
    if os.path.isfile(etc_path):
        # Its services run in /usr/share/kinfra, which is in the scratch folder here.
        mapped = os.path.join(root, "etc", "kinfra", "routes.scratch.yaml")
        with open(mapped, "w", encoding="utf-8") as f:
            f.write(rewrite_cwd(open(etc_path, encoding="utf-8").read(), "/usr/share/kinfra", share))
        r = run([kinfra, "check", mapped])
        print(f"kinfra check etc/kinfra/routes.yaml (/usr/share/kinfra → scratch): exit {r.returncode}: "
              f"{(r.stdout + r.stderr).strip()}")
        expect(r.returncode == 0, f"kinfra check /etc/kinfra/routes.yaml (with /usr/share/kinfra mapped to the "
                                  f"extracted package): exit {r.returncode}: {r.stdout}{r.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpack", default="cpack")
    ap.add_argument("--build-dir", required=True, help="a build folder whose kinfra target is built")
    ap.add_argument("--source-dir", required=True, help="the repository (dist/, demo/)")
    ap.add_argument("--version", required=True, help="the project's version")
    ap.add_argument("--sanitizer-build", action="store_true", help="skip: the package is never a sanitizer build")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (and print it)")
    args = ap.parse_args()
    deadline = time.monotonic() + 90  # ctest's TIMEOUT is 100 s

    if args.sanitizer_build:
        print("skipped: a sanitizer build (the Debian package is built from a plain build)")
        return 77
    missing = [t for t in (args.cpack, "dpkg-deb") if shutil.which(t) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (Debian's cmake and dpkg)")
        return 77
    config = os.path.join(args.build_dir, "CPackConfig.cmake")
    if not os.path.isfile(config):
        print(f"{config}: missing (cmake/package.cmake includes CPack)")
        return 1
    arch = None
    if shutil.which("dpkg"):
        arch = run(["dpkg", "--print-architecture"]).stdout.strip() or None

    tmp = tempfile.mkdtemp(prefix="kinfra-deb-")
    try:
        out = os.path.join(tmp, "out")
        started = time.monotonic()
        r = run([args.cpack, "-G", "DEB", "--config", config, "-B", out], timeout=max(10, deadline - time.monotonic()))
        print(f"cpack -G DEB: exit {r.returncode} in {time.monotonic() - started:.1f} s")
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            errors.append(f"cpack -G DEB failed (exit {r.returncode}); is the kinfra target built?")
            return report(errors, "Debian package")
        debs = glob.glob(os.path.join(out, "*.deb"))
        if not expect(len(debs) == 1, f"cpack made {len(debs)} .deb files, expected one: {debs}"):
            return report(errors, "Debian package")
        deb = debs[0]
        want_name = f"kinfra_{args.version}_{arch}.deb" if arch else None
        expect(want_name is None or os.path.basename(deb) == want_name,
               f"the package is {os.path.basename(deb)}, expected {want_name}")
        print(f"{os.path.basename(deb)}: {os.path.getsize(deb)} bytes")

        root = os.path.join(tmp, "root")
        r = run(["dpkg-deb", "-x", deb, root])
        expect(r.returncode == 0, f"dpkg-deb -x: exit {r.returncode}: {r.stderr}")
        control_dir = os.path.join(tmp, "control")
        r = run(["dpkg-deb", "-e", deb, control_dir])
        expect(r.returncode == 0, f"dpkg-deb -e: exit {r.returncode}: {r.stderr}")

        fields = control_fields(deb)
        print("control: " + ", ".join(f"{k}: {v.splitlines()[0] if v else v}" for k, v in fields.items()))
        check_fields(fields, args.version, arch, os.path.join(root, "usr", "bin", "kinfra"))
        check_control(control_dir, args.source_dir)
        entries = contents(deb)
        unit = check_contents(entries, args.source_dir)
        check_extracted(root, args.source_dir, args.version, unit)
        check_lintian(deb, deadline)
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return report(errors, "Debian package")



if __name__ == "__main__":
    sys.exit(main())
