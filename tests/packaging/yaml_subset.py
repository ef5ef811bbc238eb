"""routes.yaml and compose files as Python data, for the packaging checks: PyYAML when it is
installed; otherwise a small parser for the block subset these files use (mappings, "- " lists,
plain/quoted scalars, [flow, lists], {flow: maps}, comments). KINFRA_TEST_NO_PYYAML=1 forces the
small parser.
"""
import os
import re


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


def parse(text):
    if not os.environ.get("KINFRA_TEST_NO_PYYAML"):
        try:
            import yaml  # noqa: PLC0415
            return yaml.safe_load(text)
        except ImportError:
            pass
    return mini_yaml(text)


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return parse(f.read())
