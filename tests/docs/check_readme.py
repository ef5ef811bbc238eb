#!/usr/bin/env python3
"""Docs.ReadmeCommands: the commands and links of README.md and docs/*.md still work.

Reads the fenced code blocks (sh, bash, shell, console, or no language) and the inline `code`
of README.md, docs/*.md and docker/README.md, and checks, without running anything for real:
  - every `kinfra …` command (also after `$ `, `sudo`, VAR=value, in a `|`/`&&`/`;` chain or a
    $(…), as build/…/bin/kinfra, or as `docker run … kinfra ARGS`) is accepted by the kinfra
    built here. kinfra parses it with KINFRA_PARSE_ONLY=1 (cli/main.cpp: exit 0 right after a
    successful parse, 3 on a usage error, nothing started or asked). A synopsis line is expanded
    first: `[…]` optional parts are checked left out and put in, `a|b|c` each alternative, and
    placeholders (NAME, FILE, S, …) get sample values. An inline `kinfra SUB` with no more words
    only has to name a subcommand that exists (`kinfra --help` lists them);
  - every script a command runs (scripts/run.sh, bench/run.sh, …) exists, is executable and
    passes `bash -n`;
  - every relative file path given as an argument (routes.yaml, docker/Dockerfile, demo/api.py…)
    exists in the checkout (build/… paths are outputs and are not checked);
  - every markdown link or image to a relative path points at a file of the repository (never
    outside it), and its #anchor, if any, at a heading of that file; http(s) links are not fetched.
Each problem names the file and line. Then it checks itself: README.md must yield kinfra
commands, scripts and links to check, and copies of it with one broken thing added (a subcommand
that does not exist, an unknown option, a missing script, a broken link, a link out of the
repository, a missing anchor, …) must each be refused.

  check_readme.py --binary build/readme/bin/kinfra [--root .] [--no-self-test] [-v] [FILE.md …]
Exit 0 when everything holds, 1 with every problem listed otherwise.
"""
import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

SHELL_LANGS = {"", "sh", "bash", "shell", "console", "shell-session", "zsh"}
# Sample values for a synopsis' placeholders (any other ALL-CAPS word gets "x").
PLACEHOLDERS = {"NAME": "api", "SERVICE": "api", "FILE": "ready.json", "LEVEL": "info", "S": "5",
                "SECONDS": "5", "N": "5", "LINES": "5", "COUNT": "5", "URL": "http://127.0.0.1:9000",
                "TOKEN": "secret", "PATH": "routes.yaml", "CONFIG": "routes.yaml"}
PATH_EXTENSIONS = (".yaml", ".yml", ".md", ".py", ".sh", ".json", ".toml", ".conf", ".txt", ".mjs",
                   ".js", ".cpp", ".hpp", ".png", ".html", ".service")
PREFIX_WORDS = {"sudo", "exec", "time", "nohup", "env", "command"}
DOCKER_RUN_VALUE_OPTIONS = {"-p", "--publish", "-v", "--volume", "-e", "--env", "--name", "-w",
                            "--workdir", "-u", "--user", "--network", "--mount", "--env-file",
                            "--entrypoint", "-h", "--hostname", "--platform", "--cpus", "-m", "--memory"}


class Problem(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Markdown: code blocks, inline code, links, headings

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


def parse_markdown(text):
    """(blocks, prose): blocks = [(lang, [(line_no, line)])]; prose = the text with every code
    block line blanked (line numbers kept) for links, inline code and headings."""
    blocks, prose, current, fence = [], [], None, None
    for no, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if current is None and m:
            fence, current = m.group(2), (m.group(3).lower(), [])
            prose.append("")
        elif current is not None and line.strip().startswith(fence[0] * len(fence)) \
                and line.strip().strip(fence[0]) == "":
            blocks.append(current)
            current = None
            prose.append("")
        elif current is not None:
            current[1].append((no, line))
            prose.append("")
        else:
            prose.append(line)
    if current is not None:
        blocks.append(current)
    return blocks, "\n".join(prose)


INLINE_CODE = re.compile(r"(`+)(?!`)([\s\S]*?[^`])\1(?!`)")


def inline_code(prose):
    """[(line_no, code)] of every `code` span, and the prose with them blanked."""
    spans = []

    def blank(m):
        spans.append((prose.count("\n", 0, m.start()) + 1, " ".join(m.group(2).split())))
        return re.sub(r"[^\n]", " ", m.group(0))

    return spans, INLINE_CODE.sub(blank, prose)


LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.I)


def links(prose_without_code):
    out = []
    for rx, group in ((LINK, 2), (REF_DEF, 1), (HTML_LINK, 1)):
        for m in rx.finditer(prose_without_code):
            out.append((prose_without_code.count("\n", 0, m.start(group)) + 1, m.group(group)))
    return out


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # links → their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*|_)(\S(?:.*?\S)?)\1", r"\2", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text):
    _, prose = parse_markdown(text)
    seen, out = {}, set()
    for m in re.finditer(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", prose, re.M):
        s = slug(m.group(1))
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    out.update(re.findall(r"<a\s+(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", prose, re.I))
    return out


# ---------------------------------------------------------------------------------------------
# Shell: simple commands of a line

def split_line(line):
    """The simple commands of one shell line: split at &&, ||, ;, a | with a blank beside it,
    ( and ); a $(…) is checked as a command of its own and stands as one word. A | inside a
    word (restart|stop|start) is a synopsis' alternation and stays. Comments are dropped."""
    commands, inner, cur, i, quote = [], [], "", 0, None
    while i < len(line):
        c = line[i]
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"' and i + 1 < len(line):
                cur += c
                i += 1
                c = line[i]
            cur += c
        elif c in "'\"":
            quote = c
            cur += c
        elif c == "\\" and i + 1 < len(line):
            cur += line[i:i + 2]
            i += 1
        elif c == "#" and (not cur or cur[-1].isspace()):
            break
        elif line.startswith("$(", i):
            depth, j = 0, i + 1
            while j < len(line):
                depth += {"(": 1, ")": -1}.get(line[j], 0)
                if depth == 0:
                    break
                j += 1
            inner += split_line(line[i + 2:j])
            cur += "SUBSTITUTION"
            i = j
        elif line.startswith(("&&", "||"), i) or c in ";()" or (c == "&" and not re.search(r"[<>]$", cur)):
            commands.append(cur)
            cur = ""
            i += 1 if line.startswith(("&&", "||"), i) else 0
        elif c == "|" and ((i > 0 and line[i - 1].isspace()) or (i + 1 < len(line) and line[i + 1].isspace())
                           or not cur.strip()):
            commands.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    commands.append(cur)
    out = []
    for cmd in commands:
        try:
            words = shlex.split(cmd)
        except ValueError:
            words = cmd.split()
        if words:
            out.append(words)
    return out + inner


def strip_prefixes(words):
    """Drops redirections (> FILE, 2>&1), and `sudo [-opts]`, `exec`, `env`, `time` and
    VAR=value in front of the command."""
    out, skip = [], False
    for w in words:
        m = re.match(r"^\d*(>>?|<|&>)(.*)$", w)
        if skip or m:
            skip = not skip and m and m.group(2) == ""  # `> FILE`: FILE goes too
            continue
        out.append(w)
    words = out
    while words:
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
        elif words[0] in PREFIX_WORDS:
            prefix = words.pop(0)
            while words and words[0].startswith("-"):
                opt = words.pop(0)
                if prefix == "sudo" and opt in ("-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U") and words:
                    words.pop(0)
        else:
            break
    return words


def is_kinfra(word):
    return word == "kinfra" or word.endswith("bin/kinfra")


def docker_run_kinfra_args(words):
    """`docker run [OPTIONS] kinfra ARGS…` (the image's ENTRYPOINT is kinfra): ARGS, else None."""
    if words[:2] != ["docker", "run"]:
        return None
    i = 2
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in DOCKER_RUN_VALUE_OPTIONS else 1
    if i < len(words) and words[i].split(":")[0] == "kinfra" and len(words) > i + 1:
        return words[i + 1:]
    return None


def path_arguments(words):
    """The words of a command that look like relative paths of the repository."""
    out = []
    for w in words[1:]:
        if w.startswith("-"):
            if "=" not in w:
                continue
            w = w.split("=", 1)[1]
        w = w.strip("[]")
        if not w or w in (".", "..") or w[0] in "/~$<" or "SUBSTITUTION" in w or re.search(r"[:\s*?{}<>=|@]", w):
            continue
        if w.startswith("build/") or w.startswith("./build/"):
            continue  # outputs of a build
        if ("/" in w and not w.startswith("/")) or w.lower().endswith(PATH_EXTENSIONS):
            out.append(w)
    return out


# ---------------------------------------------------------------------------------------------
# kinfra: synopsis expansion and the parse check

def synopsis_variants(args):
    """Concrete argument lists for a synopsis: [optional] parts left out and put in, each
    alternative of a|b|c, ALL-CAPS placeholders replaced by sample values."""
    # Parse [ ] groups into a tree: a list of words and (optional) lists.
    root, stack = [], []
    cur = root
    for w in args:
        while w.startswith("["):
            group = []
            cur.append(("opt", group))
            stack.append(cur)
            cur = group
            w = w[1:]
        closes = len(w) - len(w.rstrip("]"))
        w = w.rstrip("]")
        if w and w not in ("…", "...", "|"):
            cur.append(w)
        for _ in range(closes):
            if stack:
                cur = stack.pop()

    def flatten(tree, with_optional):
        out = []
        for item in tree:
            if isinstance(item, tuple):
                if with_optional:
                    out += flatten(item[1], with_optional)
            else:
                out.append(item)
        return out

    variants = []
    for with_optional in (False, True):
        words = flatten(root, with_optional)
        alts = [w.split("|") if re.fullmatch(r"[\w-]+(\|[\w-]+)+", w) else [w] for w in words]
        for k in range(max((len(a) for a in alts), default=1)):
            v = []
            for a in alts:
                w = a[min(k, len(a) - 1)]
                w = re.sub(r"^<(.+)>$", r"\1", w) if re.fullmatch(r"<[\w-]+>", w) else w
                if re.fullmatch(r"[A-Z][A-Z0-9_]*", w) or re.fullmatch(r"[\w-]+", w) and w != w.lower() \
                        and w.upper() == w:
                    w = PLACEHOLDERS.get(w, "x")
                v.append(w)
            if v not in variants:
                variants.append(v)
    return variants


class Kinfra:
    def __init__(self, binary):
        self.binary = os.path.abspath(binary)
        self._tmp = tempfile.TemporaryDirectory(prefix="kinfra-docs-")  # an empty cwd, removed at exit
        self.workdir = self._tmp.name
        if not os.access(self.binary, os.X_OK):
            raise Problem(f"{binary}: not an executable")
        # A kinfra without the parse-only switch would really run the commands: refuse to go on.
        probe = self.parse(["check", "no-such-file-kinfra-docs-probe.yaml"])
        if probe[0] != 0:
            raise Problem(f"{binary} does not support KINFRA_PARSE_ONLY=1 (`kinfra check <missing file>` exited "
                          f"{probe[0]} instead of 0): rebuild it from this checkout (cli/main.cpp)")
        code, out = self.parse(["--help"])
        section = re.search(r"^Subcommands:\s*\n((?: +\S.*\n?)+)", out, re.M | re.I)
        self.subcommands = set(re.findall(r"^ +(\w[\w-]*)", section.group(1), re.M)) if section else set()
        if code != 0 or not self.subcommands:
            raise Problem(f"`{binary} --help` lists no SUBCOMMANDS (exit {code}):\n{out}")

    def parse(self, args):
        env = dict(os.environ, KINFRA_PARSE_ONLY="1")
        for var in ("KINFRA_ADMIN_TOKEN",):
            env.pop(var, None)
        try:
            r = subprocess.run([self.binary] + args, cwd=self.workdir, env=env, capture_output=True,
                               text=True, timeout=20, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124, "timed out after 20 s (did it run instead of only parsing?)"
        return r.returncode, (r.stdout + r.stderr).strip()

    def check(self, args, inline):
        """Problems of one documented kinfra command line (its words after `kinfra`)."""
        positional = [a for a in args if not a.startswith("-")]
        if inline and len(args) == 1 and positional:
            return [] if args[0] in self.subcommands or "|" in args[0] and all(
                p in self.subcommands for p in args[0].split("|")) else [
                f"`{args[0]}` is not a kinfra subcommand (kinfra has: {', '.join(sorted(self.subcommands))})"]
        problems = []
        for v in synopsis_variants(args):
            if any(a in ("-h", "--help") for a in v):
                # Help ends the parse early and exits 0 whatever else is there: check the subcommand.
                first = next((a for a in v if not a.startswith("-")), None)
                if first is not None and first not in self.subcommands:
                    problems.append(f"`{first}` is not a kinfra subcommand")
                continue
            code, out = self.parse(v)
            if code != 0:
                first_line = next((l for l in out.splitlines() if l.strip()), "")
                if v and not v[0].startswith("-") and v[0] not in self.subcommands:
                    first_line = f"`{v[0]}` is not a kinfra subcommand ({first_line})"
                problems.append(f"`kinfra {shlex.join(v)}` is refused (exit {code}): {first_line}")
        return problems


# ---------------------------------------------------------------------------------------------
# The checks

def check_script(root, word, needs_exec=True):
    path = os.path.normpath(os.path.join(root, word))
    if not os.path.isfile(path):
        return [f"script {word} does not exist"]
    problems = []
    if needs_exec and not os.access(path, os.X_OK):
        problems.append(f"script {word} is not executable (chmod +x)")
    r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    if r.returncode != 0:
        problems.append(f"script {word} does not parse (bash -n): {r.stderr.strip()}")
    return problems


def check_command(root, kinfra, words, inline):
    words = strip_prefixes(words)
    if not words:
        return [], None
    problems, kind = [], None
    cmd = words[0]
    kinfra_args = words[1:] if is_kinfra(cmd) else docker_run_kinfra_args(words)
    if inline and kinfra_args == []:
        return [], None  # the program's name (`kinfra`, `PREFIX/bin/kinfra`), not a command
    if kinfra_args is not None:
        kind = "kinfra"
        problems += kinfra.check(kinfra_args, inline)
    elif cmd.endswith(".sh") and not cmd.startswith(("/", "$", "~")):
        kind = "script"
        problems += check_script(root, cmd)
    elif cmd in ("bash", "sh") and len(words) > 1 and words[1].endswith(".sh"):
        kind = "script"
        problems += check_script(root, words[1], needs_exec=False)
    elif inline and cmd not in ("docker", "cmake", "ctest", "python3", "bash", "sh"):
        return [], None  # other inline code is not a command we know
    for p in path_arguments(words):
        if not os.path.exists(os.path.join(root, p)):
            problems.append(f"{p} does not exist (relative to the repository)")
    return problems, kind


def block_commands(lang, lines):
    """[(line_no, line)] of the commands of one code block."""
    if lang not in SHELL_LANGS:
        return []
    prompt = [(n, l) for n, l in lines if re.match(r"^\s*\$ ", l)]
    if prompt or lang in ("console", "shell-session"):
        return [(n, re.sub(r"^\s*\$ ", "", l)) for n, l in prompt]
    out, pending = [], None
    for n, l in lines:
        if pending is not None:
            pending = (pending[0], pending[1][:-1] + " " + l.strip())
        else:
            pending = (n, l.strip())
        if not pending[1].endswith("\\"):
            out.append(pending)
            pending = None
    if pending is not None:
        out.append(pending)
    if lang == "":
        # A block without a language is often not shell (a tree, a log line): only lines that
        # start with kinfra or a script count.
        out = [(n, l) for n, l in out if re.match(r"^(\S*bin/)?kinfra(\s|$)|^\S+\.sh(\s|$)", l)]
    return out


def check_markdown(root, md_path, text, kinfra, stats, verbose=False):
    rel = os.path.relpath(md_path, root)
    problems = []
    blocks, prose = parse_markdown(text)
    spans, prose_plain = inline_code(prose)

    def note(line_no, source, found):
        for f in found:
            problems.append(f"{rel}:{line_no}: {f}\n      in: {source.strip()}")

    for lang, lines in blocks:
        for no, line in block_commands(lang, lines):
            for words in split_line(line):
                found, kind = check_command(root, kinfra, words, inline=False)
                stats[kind] = stats.get(kind, 0) + 1
                if verbose:
                    print(f"  {rel}:{no}: {kind or 'command'}: {shlex.join(words)}")
                note(no, line, found)
    for no, code in spans:
        if not re.match(r"^(\S*bin/)?kinfra(\s|$)|^\S+\.sh(\s|$)|^(docker|cmake|ctest|bash|sh|python3)\s", code):
            continue
        for words in split_line(code):
            found, kind = check_command(root, kinfra, words, inline=True)
            stats[kind] = stats.get(kind, 0) + 1
            if verbose and kind:
                print(f"  {rel}:{no}: {kind} (inline): {shlex.join(words)}")
            note(no, code, found)

    root_real = os.path.realpath(root)
    for no, target in links(prose_plain):
        stats["link"] = stats.get("link", 0) + 1
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or not target:
            continue  # http(s)://, mailto:…: not fetched
        path, _, frag = target.partition("#")
        if path:
            base = root if path.startswith("/") else os.path.dirname(md_path)
            full = os.path.normpath(os.path.join(base, path.lstrip("/")))
            if os.path.commonpath([os.path.realpath(full), root_real]) != root_real:
                note(no, target, [f"link to {target} leaves the repository"])
                continue
            if not os.path.exists(full):
                note(no, target, [f"link to {target}: {os.path.relpath(full, root)} does not exist"])
                continue
        else:
            full = md_path
        if frag and full.endswith(".md"):
            with open(full, encoding="utf-8") as f:
                other = f.read() if full != md_path else text
            if frag not in anchors(other):
                note(no, target, [f"link to {target}: {os.path.relpath(full, root)} has no heading #{frag}"])
    return problems


# Broken copies of README.md that must be refused (the check must not pass vacuously): README.md
# with one broken thing added at its end, so that editing README.md does not break the self-test.
MUTATIONS = [
    ("a subcommand that does not exist", "```sh\nkinfra frobnicate routes.yaml\n```"),
    ("an option that does not exist", "```sh\nkinfra status --jsn\n```"),
    ("an option value that does not parse", "```sh\nkinfra restart api --timeout soon\n```"),
    ("an unknown subcommand after `$ sudo`, in a pipeline", "```console\n$ sudo kinfra frobnicate | less\n```"),
    ("a synopsis alternative that does not exist", "```\nkinfra restart|reboot NAME [--no-wait]\n```"),
    ("a synopsis optional part that does not exist", "```\nkinfra logs NAME [--tail LINES]\n```"),
    ("a subcommand that does not exist, in inline code", "Validate with `kinfra validate routes.yaml`."),
    ("a script that does not exist", "```sh\nscripts/no-such-script.sh\n```"),
    ("a file argument that does not exist", "```sh\nkinfra check no-such-routes.yaml\n```"),
    ("a link to a file that does not exist", "See [the page](docs/no-such-page.md)."),
    ("a link out of the repository", "See [passwd](../../etc/passwd)."),
    ("a link to a heading that does not exist", "See [reload](docs/operations.md#no-such-heading)."),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True, help="the kinfra built here")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                    help="the repository (default: this script's ../..)")
    ap.add_argument("--no-self-test", action="store_true", help="only check the documents")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every command checked")
    ap.add_argument("files", nargs="*", help="markdown files (default: README.md docs/*.md docker/README.md)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    files = [os.path.abspath(f) for f in args.files] or \
        [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md"))) + \
        [p for p in [os.path.join(root, "docker", "README.md")] if os.path.exists(p)]

    try:
        kinfra = Kinfra(args.binary)
    except Problem as e:
        print(f"error: {e}")
        return 1

    problems, stats = [], {}
    for f in files:
        with open(f, encoding="utf-8") as fh:
            problems += check_markdown(root, f, fh.read(), kinfra, stats, args.verbose)
    print(f"checked {len(files)} files: {stats.get('kinfra', 0)} kinfra commands, {stats.get('script', 0)} "
          f"script runs, {stats.get(None, 0)} other commands, {stats.get('link', 0)} links")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print("  - " + p)
        return 1
    print("OK")

    if args.no_self_test:
        return 0
    readme = os.path.join(root, "README.md")
    with open(readme, encoding="utf-8") as fh:
        text = fh.read()
    seen = {}
    check_markdown(root, readme, text, kinfra, seen)
    failed = not (seen.get("kinfra") and seen.get("script") and seen.get("link"))
    if failed:
        print(f"self-test: README.md yields too little to check ({seen}): are its commands still in code blocks?")
    for what, addition in MUTATIONS:
        broken = text.rstrip("\n") + "\n\n" + addition + "\n"
        found = check_markdown(root, readme, broken, kinfra, {})
        if found:
            print(f"self-test: a copy with {what} is refused: {found[0].splitlines()[0]}")
        else:
            print(f"self-test: a copy with {what} PASSES the check: the check is too weak")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
