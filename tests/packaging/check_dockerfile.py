#!/usr/bin/env python3
"""Packaging.DockerfileMatchesInstallScript: docker/Dockerfile, checked without a Docker engine.

No Docker engine runs in CI, so the image is never built there. This keeps docker/Dockerfile
correct by construction instead:
  - the build stage is debian:bookworm and runs the quick start's own commands: the same
    scripts/install-deps.sh call and the same `cmake` configure and build commands as
    scripts/run.sh (compared after dropping redirections and extra whitespace), then
    `cmake --install` of that build folder;
  - the runtime stage is debian:bookworm-slim and its single `apt-get install` carries the Debian
    package of every shared library that the kinfra built here links (`ldd` + `dpkg -S`), apart
    from those the slim image already has, and no library package that kinfra does not link;
  - it runs as a non-root user, exposes 9100, has a HEALTHCHECK on /__status__ with a program the
    image installs, and starts the installed kinfra with the image's own routes.yaml
    (docker/routes.docker.yaml, copied into the runtime stage), which must listen on every
    interface, or the published port would reach nothing (the installed default routes.yaml
    listens on 127.0.0.1 only);
  - that routes.yaml is the default one (dist/routes.yaml) but for `listen` and the services'
    `cwd`, which must be the image's share/kinfra (where its demo/ is), and passes `kinfra check`
    with that folder mapped to the repository's (which holds the same demo/).
Then it checks itself: copies of the Dockerfile with one thing broken (libssl3 left out, the full
image as runtime, another cmake command, no USER, no HEALTHCHECK, the installed routes.yaml as the
CMD, the image's routes.yaml not copied) must each be refused.

  check_dockerfile.py --dockerfile docker/Dockerfile --run-script scripts/run.sh \
                      --routes docker/routes.docker.yaml --source-dir . \
                      --binary build/release/bin/kinfra [--sanitizer-build]
Exit 0 when everything holds, 1 with every problem listed otherwise, 77 (skipped) without dpkg.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

from default_routes import differences, rewrite_cwd
from report import report
from yaml_subset import parse

# Packages that debian:bookworm-slim already contains (it is a minimal Debian with the Essential
# set). Only libraries kinfra could plausibly link are listed; anything else must be installed.
SLIM_BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1", "zlib1g"}

# In a sanitizer build (scripts/hardening.sh) kinfra also links the sanitizer runtimes; the image
# is never such a build.
SANITIZER_PACKAGE = re.compile(r"^lib(asan|ubsan|tsan|lsan|hwasan)\d+$")
# Libraries the release build links and a sanitizer build does not (mimalloc: the sanitizer keeps
# its own allocator): in the image's list, they are not "linked by nothing" when checking such a build.
RELEASE_ONLY_PACKAGES = {"libmimalloc2.0"}

# Packages in the runtime list that are not libraries of kinfra, and why they are there.
NON_LIBRARY_PACKAGES = {"ca-certificates", "python3", "curl"}


# ---------------------------------------------------------------------------------------------
# Dockerfile and shell parsing (the subset these files use)

def dockerfile_instructions(text):
    """[(KEYWORD, args)] with continuation lines joined and comment lines dropped."""
    out, current = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if current is None and (not line or line.startswith("#")):
            continue
        if current is not None and (not line or line.startswith("#")):
            continue  # comment or empty line inside a continued instruction: ignored, as Docker does
        cont = line.endswith("\\")
        part = line[:-1].rstrip() if cont else line
        current = part if current is None else current + " " + part
        if not cont:
            keyword, _, args = current.partition(" ")
            out.append((keyword.upper(), args.strip()))
            current = None
    if current is not None:
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages(instructions):
    """[{'image', 'name', 'instructions'}] split at each FROM."""
    result = []
    for keyword, args in instructions:
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]  # --platform=…
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append({"image": words[0] if words else "", "name": name, "instructions": []})
        elif result:
            result[-1]["instructions"].append((keyword, args))
    return result


REDIRECTION = re.compile(r"^(\d*|&)(>>?|<)(&?\d+|.+)?$")


def shell_commands(script):
    """Simple commands of a shell text: split at &&, ||, ;, |, newlines; tokens without
    redirections and without leading VAR=value assignments."""
    commands = []
    for piece in re.split(r"&&|\|\||;|\||\n", script):
        try:
            tokens = shlex.split(piece, comments=True)
        except ValueError:
            tokens = piece.split()
        clean, skip_next = [], False
        for t in tokens:
            if skip_next:
                skip_next = False
                continue
            m = REDIRECTION.match(t)
            if m:
                skip_next = m.group(3) is None  # `> file`: the target is the next word
                continue
            clean.append(t)
        while clean and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", clean[0]):
            clean.pop(0)
        if clean:
            commands.append(clean)
    return commands


def script_commands(text):
    """Simple commands of a shell script, continuation lines joined."""
    return shell_commands(re.sub(r"\\\n", " ", text))


def exec_or_shell(args):
    """A CMD/ENTRYPOINT/HEALTHCHECK CMD argument as a list of words."""
    args = args.strip()
    if args.startswith("["):
        try:
            return json.loads(args)
        except ValueError:
            pass
    return shlex.split(args)


# ---------------------------------------------------------------------------------------------
# What the built binary needs

def linked_libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs, missing = [], []
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("linux-vdso") or line.startswith("linux-gate"):
            continue
        if "=>" in line:
            name, _, rest = line.partition("=>")
            path = rest.strip().split(" (")[0].strip()
            if path == "not found" or not path:
                missing.append(name.strip())
                continue
        else:
            path = line.split(" (")[0].strip()
        libs.append(path)
    return libs, missing


def package_of(path):
    """The Debian package that owns a library file (usrmerge: /lib and /usr/lib are the same)."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.append(p[len("/usr"):])
        else:
            candidates.append("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            first = r.stdout.strip().splitlines()[0]
            owners = first.rsplit(": ", 1)[0]
            return owners.split(",")[0].strip().split(":")[0]
    return None


def required_packages(binary, sanitizer_build):
    """{package: [library paths]} for every library that kinfra links, plus problems."""
    problems = []
    libs, missing = linked_libraries(binary)
    for name in missing:
        problems.append(f"ldd {binary}: {name} => not found")
    need = {}
    for lib in libs:
        pkg = package_of(lib)
        if pkg is None:
            problems.append(f"dpkg -S: no Debian package owns {lib} (linked by kinfra)")
            continue
        if sanitizer_build and SANITIZER_PACKAGE.match(pkg):
            continue
        need.setdefault(pkg, []).append(lib)
    return need, problems


# ---------------------------------------------------------------------------------------------
# The checks

def check(dockerfile_text, run_script_text, routes_text, routes_source, need, optional=frozenset()):
    """routes_source: the image's routes.yaml as the build context names it (docker/routes.docker.yaml)."""
    errors = []
    all_stages = stages(dockerfile_instructions(dockerfile_text))
    if len(all_stages) < 2:
        return [f"expected a multi-stage build (a build stage and a runtime stage), found {len(all_stages)} FROM"]
    build, runtime = all_stages[0], all_stages[-1]

    # --- build stage: the quick start's own commands
    if build["image"] != "debian:bookworm":
        errors.append(f"the build stage is FROM {build['image']}, expected debian:bookworm")
    if build["name"] is None:
        errors.append("the build stage has no name (FROM debian:bookworm AS build)")

    run_cmds = script_commands(run_script_text)
    want_install = [c for c in run_cmds if c[0].endswith("install-deps.sh")]
    want_cmake = [c for c in run_cmds if c[0] == "cmake"]
    if not want_install:
        errors.append("scripts/run.sh calls no install-deps.sh (the check needs it to compare)")
    if not want_cmake:
        errors.append("scripts/run.sh has no cmake command (the check needs them to compare)")

    build_cmds = []  # (index of the RUN, command)
    copied_sources_at = None
    for i, (keyword, args) in enumerate(build["instructions"]):
        if keyword == "RUN":
            build_cmds += [(i, c) for c in shell_commands(args)]
        if keyword == "COPY" and copied_sources_at is None:
            words = [w for w in args.split() if not w.startswith("--")]
            if len(words) >= 2 and words[0] in (".", "./"):
                copied_sources_at = i
    got_install = [(i, c) for i, c in build_cmds if c[0].endswith("install-deps.sh")]
    got_cmake = [(i, c) for i, c in build_cmds if c[0] == "cmake"]
    got_cmake_build = [(i, c) for i, c in got_cmake if c[1:2] != ["--install"]]
    got_cmake_install = [(i, c) for i, c in got_cmake if c[1:2] == ["--install"]]

    if want_install and [c for _, c in got_install] != want_install:
        errors.append("the build stage must RUN the install script exactly as scripts/run.sh does: "
                      f"{[' '.join(c) for c in want_install]}, found {[' '.join(c) for _, c in got_install]}")
    if want_cmake and [c for _, c in got_cmake_build] != want_cmake:
        errors.append("the build stage's cmake configure/build commands differ from scripts/run.sh:\n"
                      f"      scripts/run.sh: {[' '.join(c) for c in want_cmake]}\n"
                      f"      Dockerfile:     {[' '.join(c) for _, c in got_cmake_build]}")
    if got_install and got_cmake_build and got_install[0][0] > got_cmake_build[0][0]:
        errors.append("the build stage runs cmake before scripts/install-deps.sh")
    if got_cmake_build and (copied_sources_at is None or copied_sources_at > got_cmake_build[0][0]):
        errors.append("the build stage configures before copying the sources (COPY . …)")

    prefix = None
    if len(got_cmake_install) != 1:
        errors.append(f"the build stage must run `cmake --install <build dir> --prefix <prefix>` once "
                      f"(found {len(got_cmake_install)})")
    else:
        _, inst = got_cmake_install[0]
        if "--prefix" in inst and inst.index("--prefix") + 1 < len(inst):
            prefix = inst[inst.index("--prefix") + 1].rstrip("/")
        else:
            errors.append(f"`{' '.join(inst)}` has no --prefix")
        configure = next((c for c in want_cmake if "-B" in c and c.index("-B") + 1 < len(c)), None)
        if configure and inst[2:3] != [configure[configure.index("-B") + 1]]:
            errors.append(f"`{' '.join(inst)}` does not install the folder scripts/run.sh builds "
                          f"({configure[configure.index('-B') + 1]})")
        if got_cmake_build and got_cmake_install[0][0] < got_cmake_build[-1][0]:
            errors.append("cmake --install runs before the build")

    # --- runtime stage
    if runtime["image"] != "debian:bookworm-slim":
        errors.append(f"the runtime stage is FROM {runtime['image']}, expected debian:bookworm-slim")
    rt = runtime["instructions"]
    rt_cmds = [c for k, a in rt if k == "RUN" for c in shell_commands(a)]
    installs = [c for c in rt_cmds if c[0] in ("apt-get", "apt") and "install" in c]
    packages = set()
    if len(installs) != 1:
        errors.append(f"the runtime stage must have exactly one `apt-get install` (found {len(installs)}): "
                      "its package list is the image's runtime list")
    else:
        cmd = installs[0]
        packages = {t for t in cmd[cmd.index("install") + 1:] if not t.startswith("-")}
        if "--no-install-recommends" not in cmd:
            errors.append("the runtime apt-get install should use --no-install-recommends")
    for pkg, libs in sorted(need.items()):
        if pkg not in packages and pkg not in SLIM_BASE_PACKAGES:
            errors.append(f"kinfra links {', '.join(libs)} from the Debian package {pkg}, which the runtime "
                          f"stage does not install (its list: {' '.join(sorted(packages)) or 'nothing'})")
    for pkg in sorted(packages):
        if pkg in NON_LIBRARY_PACKAGES or pkg in need or pkg in optional:
            continue
        if pkg.startswith("lib"):
            errors.append(f"the runtime stage installs {pkg}, but kinfra links no library from it (ldd)")
    if "ca-certificates" not in packages:
        errors.append("the runtime stage does not install ca-certificates (https:// services are verified "
                      "against the system store)")
    if re.search(r"\bpython3\b", routes_text) and "python3" not in packages:
        errors.append("the default routes.yaml runs python3 (its demo services), which the runtime stage does "
                      "not install")

    users = [a.split(":")[0].strip() for k, a in rt if k == "USER"]
    if not users:
        errors.append("the runtime stage has no USER: kinfra would run as root")
    elif users[-1] in ("root", "0"):
        errors.append(f"the runtime stage runs as {users[-1]}")
    elif not any(c[0] in ("useradd", "adduser") and users[-1] in c for c in rt_cmds):
        errors.append(f"the runtime stage never creates the user {users[-1]} (useradd)")

    exposed = [p.split("/")[0] for k, a in rt if k == "EXPOSE" for p in a.split()]
    if "9100" not in exposed:
        errors.append(f"the runtime stage does not EXPOSE 9100 (found {exposed})")

    checks = [a for k, a in rt if k == "HEALTHCHECK"]
    if not checks or checks[-1].upper().startswith("NONE"):
        errors.append("the runtime stage has no HEALTHCHECK")
    else:
        hc = checks[-1]
        if "/__status__" not in hc or not re.search(r"(127\.0\.0\.1|localhost):9100", hc):
            errors.append(f"the HEALTHCHECK does not ask http://127.0.0.1:9100/__status__: {hc}")
        m = re.search(r"\bCMD\s+(.*)$", hc)
        words = exec_or_shell(m.group(1)) if m else []
        if words and words[0] == "CMD-SHELL":
            words = words[1:]
        program = os.path.basename(words[0]) if words else ""
        if program and program != "kinfra" and program not in packages:
            errors.append(f"the HEALTHCHECK runs {program}, which the runtime stage does not install")

    if prefix:
        copied = [a for k, a in rt if k == "COPY" and "--from=" in a and prefix in a.split()]
        if not copied:
            errors.append(f"the runtime stage does not COPY --from the build stage's install prefix {prefix}")
        entry = [exec_or_shell(a) for k, a in rt if k == "ENTRYPOINT"]
        cmd = [exec_or_shell(a) for k, a in rt if k == "CMD"]
        if not entry or entry[-1] not in ([prefix + "/bin/kinfra"], ["kinfra"]):
            errors.append(f"the ENTRYPOINT should be [\"{prefix}/bin/kinfra\"], found {entry[-1] if entry else None}")
        # The image's routes.yaml: copied from the build context, and what the CMD runs.
        in_image = None
        for k, a in rt:
            words = [w for w in a.split() if not w.startswith("--")] if k == "COPY" and "--from=" not in a else []
            if len(words) == 2 and os.path.normpath(words[0]) == os.path.normpath(routes_source):
                in_image = words[1] + os.path.basename(routes_source) if words[1].endswith("/") else words[1]
        if in_image is None:
            errors.append(f"the runtime stage does not COPY {routes_source} (the image's routes.yaml) into the image")
        elif not cmd or cmd[-1] != ["run", in_image]:
            errors.append(f"the CMD should be [\"run\", \"{in_image}\"] (the image's routes.yaml, copied from "
                          f"{routes_source}), found {cmd[-1] if cmd else None}")

    listen = re.search(r"^listen:\s*\"?([^\s\"#]+)", routes_text, re.M)
    if not listen or not re.match(r"^(0\.0\.0\.0|\[::\]|):9100$", listen.group(1)):
        errors.append(f"{routes_source} must listen on every interface on 9100 (listen: 0.0.0.0:9100), "
                      f"or the container's published port reaches nothing; found {listen.group(1) if listen else None}")
    return errors


def image_prefix(dockerfile_text):
    """The --prefix of the build stage's `cmake --install` (where the image has kinfra), or None."""
    all_stages = stages(dockerfile_instructions(dockerfile_text))
    for keyword, args in (all_stages[0]["instructions"] if all_stages else []):
        for c in shell_commands(args) if keyword == "RUN" else []:
            if c[:2] == ["cmake", "--install"] and "--prefix" in c and c.index("--prefix") + 1 < len(c):
                return c[c.index("--prefix") + 1].rstrip("/")
    return None


def check_image_routes(routes_path, routes_text, source_dir, prefix, binary):
    """The image's routes.yaml: the default one (dist/routes.yaml) but for `listen` and `cwd`, every
    service it runs started in the image's share/kinfra (where demo/ is), and `kinfra check` passes
    on it with that folder mapped to the repository, which holds the same demo/."""
    errors = []
    share = f"{prefix}/share/kinfra"
    doc = parse(routes_text)
    default_path = os.path.join(source_dir, "dist", "routes.yaml")
    with open(default_path, encoding="utf-8") as f:
        default = parse(f.read())
    for d in differences(doc, default, os.path.basename(routes_path), "dist/routes.yaml",
                         ignore_top=("listen",), ignore_service_keys=("cwd",)):
        errors.append(f"{routes_path} is not the default routes.yaml (but for listen and cwd): {d}")
    for name, svc in ((doc or {}).get("services") or {}).items():
        if isinstance(svc, dict) and "command" in svc:
            cwd = svc.get("cwd")
            if cwd != share:
                errors.append(f"{routes_path}: service {name} runs in {cwd!r}; in the image its demo/ is in {share}: "
                              f"cwd: {share}")
    with tempfile.TemporaryDirectory(prefix="kinfra-docker-routes-") as tmp:
        mapped = os.path.join(tmp, "routes.yaml")
        with open(mapped, "w", encoding="utf-8") as f:
            f.write(rewrite_cwd(routes_text, share, os.path.abspath(source_dir)))
        r = subprocess.run([binary, "check", mapped], capture_output=True, text=True, timeout=30)
        print(f"kinfra check {os.path.basename(routes_path)} ({share} → {os.path.abspath(source_dir)}): "
              f"exit {r.returncode}: {(r.stdout + r.stderr).strip()}")
        if r.returncode != 0:
            errors.append(f"kinfra check {routes_path} (cwd {share} mapped to the repository): exit {r.returncode}: "
                          f"{(r.stdout + r.stderr).strip()}")
    return errors


# Broken copies that must be refused (the check must not pass vacuously).
MUTATIONS = [
    ("libssl3 left out of the runtime list",
     lambda t: re.sub(r"(apt-get[^\n]*install[^\n]*?)\s+libssl3\b", r"\1", t, count=1)),
    ("the full debian:bookworm as the runtime image",
     lambda t: t.replace("FROM debian:bookworm-slim", "FROM debian:bookworm", 1)),
    ("a different cmake configure command",
     lambda t: t.replace("-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_BUILD_TYPE=Debug", 1)),
    ("no USER", lambda t: re.sub(r"^USER .*$", "", t, flags=re.M)),
    ("no HEALTHCHECK", lambda t: re.sub(r"^HEALTHCHECK (.*\\\n)*.*$", "", t, flags=re.M)),
    ("the installed routes.yaml (127.0.0.1 only) as the CMD",
     lambda t: re.sub(r'^CMD .*$', 'CMD ["run", "/opt/kinfra/share/kinfra/routes.yaml"]', t, flags=re.M)),
    ("the image's routes.yaml not copied", lambda t: re.sub(r"^COPY docker/routes\.docker\.yaml .*$", "", t, flags=re.M)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("--run-script", required=True)
    ap.add_argument("--routes", required=True,
                    help="the image's own routes.yaml, which its runtime stage copies (docker/routes.docker.yaml)")
    ap.add_argument("--source-dir", required=True,
                    help="the repository: the build context, with dist/routes.yaml and demo/")
    ap.add_argument("--binary", required=True, help="the kinfra built here (ldd)")
    ap.add_argument("--sanitizer-build", action="store_true", help="ignore the sanitizer runtimes")
    ap.add_argument("--no-self-test", action="store_true", help="only check the given Dockerfile")
    args = ap.parse_args()

    if shutil.which("dpkg") is None or shutil.which("ldd") is None:
        print("skipped: needs ldd and dpkg (a Debian system)")
        return 77

    def read(p):
        with open(p, encoding="utf-8") as f:
            return f.read()

    dockerfile, run_script, routes = read(args.dockerfile), read(args.run_script), read(args.routes)
    need, problems = required_packages(args.binary, args.sanitizer_build)
    print("kinfra links (ldd → dpkg -S):")
    for pkg, libs in sorted(need.items()):
        where = "in bookworm-slim" if pkg in SLIM_BASE_PACKAGES else "must be installed"
        print(f"  {pkg:<16} {where:<18} {' '.join(os.path.basename(l) for l in libs)}")

    routes_source = os.path.relpath(os.path.abspath(args.routes), os.path.abspath(args.source_dir))
    optional = RELEASE_ONLY_PACKAGES if args.sanitizer_build else frozenset()
    errors = problems + check(dockerfile, run_script, routes, routes_source, need, optional)
    prefix = image_prefix(dockerfile)
    if prefix:
        errors += check_image_routes(args.routes, routes, args.source_dir, prefix, args.binary)
    if report(errors, f"\n{args.dockerfile}"):
        return 1

    if args.no_self_test:
        return 0
    failed = False
    for what, mutate in MUTATIONS:
        broken = mutate(dockerfile)
        if broken == dockerfile:
            print(f"self-test: could not make the copy with {what} (the Dockerfile changed shape?)")
            failed = True
            continue
        found = check(broken, run_script, routes, routes_source, need)
        if found:
            print(f"self-test: a copy with {what} is refused: {found[0].splitlines()[0]}")
        else:
            print(f"self-test: a copy with {what} PASSES the check: the check is too weak")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
