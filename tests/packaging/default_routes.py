"""The default routes.yaml and its copies, compared as data (comments and layout aside).

The repository has one default configuration in several places: routes.yaml at the top (the quick
start's, which users edit), dist/routes.yaml (what `cmake --install` installs), dist/deb/routes.yaml
(/etc/kinfra/routes.yaml of the Debian package, its demo services run from /usr/share/kinfra) and
docker/routes.docker.yaml (the image's, listening on every interface). They may differ only where
the place they are installed requires: `listen` and the services' `cwd`.
"""
import shutil
import subprocess

from yaml_subset import parse


def differences(got, want, got_name, want_name, ignore_top=(), ignore_service_keys=()):
    """Every difference between two parsed routes.yaml files, as sentences; [] when they agree."""
    got, want = dict(got or {}), dict(want or {})
    out = []
    for key in sorted(set(got) | set(want)):
        if key in ignore_top:
            continue
        a, b = got.get(key), want.get(key)
        if key == "services" and isinstance(a, dict) and isinstance(b, dict):
            for name in sorted(set(a) | set(b)):
                if name not in a or name not in b:
                    out.append(f"service {name} is only in {got_name if name in a else want_name}")
                    continue
                sa = {k: v for k, v in (a[name] or {}).items() if k not in ignore_service_keys}
                sb = {k: v for k, v in (b[name] or {}).items() if k not in ignore_service_keys}
                if sa != sb:
                    out.append(f"service {name}: {got_name} has {sa}, {want_name} has {sb}")
        elif a != b:
            out.append(f"{key}: {got_name} has {a!r}, {want_name} has {b!r}")
    return out


def committed_root_routes(source_dir):
    """(parsed routes.yaml at the top of the checkout as committed in HEAD, None) or (None, why not).
    The working copy may hold the user's edits; the committed one is what dist/ must follow."""
    if shutil.which("git") is None:
        return None, "git is not installed"
    try:
        r = subprocess.run(["git", "-C", source_dir, "show", "HEAD:routes.yaml"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"git show HEAD:routes.yaml: {e}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["git show failed"])[-1]
        return None, f"not a git checkout with a committed routes.yaml ({last})"
    return parse(r.stdout), None


def rewrite_cwd(text, old_prefix, new_prefix):
    """routes.yaml text with every `cwd: OLD_PREFIX…` pointing under NEW_PREFIX instead (to check
    an installed file where its folders are not in their final place)."""
    lines = []
    for line in text.splitlines(keepends=True):
        key, sep, value = line.partition("cwd:")
        if sep and key.strip() == "" and value.strip().startswith(old_prefix):
            value = value.replace(old_prefix, new_prefix.rstrip("/"), 1)
        lines.append(key + sep + value)
    return "".join(lines)


def is_loopback_listen(doc):
    """True when every `listen` address of a parsed routes.yaml is on loopback."""
    listen = (doc or {}).get("listen")
    entries = listen if isinstance(listen, list) else [listen]
    addresses = [e.get("address") if isinstance(e, dict) else e for e in entries]
    return bool(addresses) and all(
        isinstance(a, str) and (a.startswith("127.") or a.startswith("[::1]") or a.startswith("localhost:"))
        for a in addresses)
