"""How the packaging checks end: every problem found, or OK (exit code 1 or 0)."""


def report(errors, what):
    if errors:
        print(f"{len(errors)} problem(s):")
        for e in errors:
            print("  - " + e)
        return 1
    print(f"{what}: OK")
    return 0
