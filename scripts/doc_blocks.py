#!/usr/bin/env python3
"""Extracts the shell blocks of a guide for scripts/check_docs.sh.

    doc_blocks.py run GUIDE      the ```sh blocks, as a bash script
    doc_blocks.py cluster GUIDE  the ```sh cluster blocks (only syntax-checked: they need a cluster)

Every other line becomes an empty line, so line N of the script is line N of the guide and a
failure reports where it is in the guide. A shell-looking block in any other fence (```bash,
```shell, ```console, ```sh <something else>) is refused: every command in a guide is either
run or marked as needing a cluster.
"""

import re
import sys

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(.*?)\s*$")
SHELLISH = {"bash", "shell", "console", "zsh", "shell-session", "sh-session"}


def blocks(lines):
    """Yields (info string, first line number, block lines) for every fenced block."""
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group(2), match.group(3)
        start = i + 1
        end = start
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if end == len(lines):
            raise SystemExit(f"line {i + 1}: block not closed")
        yield info, start, lines[start:end]
        i = end + 1


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("run", "cluster"):
        raise SystemExit(__doc__)
    mode, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    out = [""] * len(lines)
    for info, start, body in blocks(lines):
        words = info.split()
        if not words or words[0] not in ("sh", *SHELLISH):
            continue
        if words[0] != "sh" or words[1:] not in ([], ["cluster"]):
            raise SystemExit(
                f"{path}:{start}: a shell block is ```sh (run) or ```sh cluster (needs a cluster), "
                f"not ```{info}"
            )
        wanted = "cluster" if words[1:] == ["cluster"] else "run"
        if wanted == mode:
            out[start : start + len(body)] = body
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
