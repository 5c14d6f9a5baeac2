#!/usr/bin/env python3
"""Extracts the shell blocks of a guide for scripts/check_docs.sh.

    doc_blocks.py run GUIDE        the ```sh blocks, as a bash script
    doc_blocks.py cluster GUIDE    checks each ```sh cluster block with `bash -n` (they need a cluster,
                                   so they are not run); prints how many lines it checked
    doc_blocks.py links FILE...    every relative link of these Markdown files, and its #anchor,
                                   leads somewhere; so does every runbook_url of a YAML file

Every other line becomes an empty line, so line N of the script is line N of the guide and a
failure reports where it is in the guide. A shell-looking block in any other fence (```bash,
```shell, ```console, ```sh <something else>) is refused: every command in a guide is either
run or marked as needing a cluster.
"""

import os
import re
import subprocess
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


LINK = re.compile(r"\]\(([^)\s]+)\)")
RUNBOOK = re.compile(r"runbook_url:\s*(\S+)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
EXPLICIT = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    """Every anchor a Markdown file defines (headings outside code blocks, and <a id>)."""
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    in_code = set()
    for _, start, body in blocks(lines):
        in_code.update(range(start - 1, start + len(body) + 1))
    found, seen = set(), {}
    for number, line in enumerate(lines):
        found.update(EXPLICIT.findall(line))
        match = HEADING.match(line)
        if match and number not in in_code:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def check_links(paths):
    """Relative links (Markdown) and runbook URLs (YAML, relative to the repository) that lead nowhere."""
    broken = []
    for path in paths:
        with open(path, encoding="utf-8") as file:
            text = file.read()
        if path.endswith((".yaml", ".yml")):
            targets = [(t, ".") for t in RUNBOOK.findall(text)]
        else:
            targets = [(t, os.path.dirname(path)) for t in LINK.findall(text)]
        for target, base in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(base, file_part)) if file_part else path
            if not os.path.exists(resolved):
                broken.append(f"{path}: {target}: no such file")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                broken.append(f"{path}: {target}: no such anchor")
    return broken


def shell_blocks(path, lines):
    """Yields (kind, first line number, block lines) of the guide's shell blocks, kind "run" or
    "cluster"; refuses any other shell fence."""
    for info, start, body in blocks(lines):
        words = info.split()
        if not words or words[0] not in ("sh", *SHELLISH):
            continue
        if words[0] != "sh" or words[1:] not in ([], ["cluster"]):
            raise SystemExit(
                f"{path}:{start}: a shell block is ```sh (run) or ```sh cluster (needs a cluster), "
                f"not ```{info}"
            )
        yield ("cluster" if words[1:] == ["cluster"] else "run"), start, body


def check_cluster_blocks(path, lines):
    """`bash -n` on each cluster block alone (so a quote cannot close in another block), with
    the guide's line numbers in the messages."""
    checked, failed = 0, False
    for kind, start, body in shell_blocks(path, lines):
        if kind != "cluster":
            continue
        script = "\n" * start + "\n".join(body) + "\n"
        result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        if result.returncode != 0:
            failed = True
            sys.stderr.write(result.stderr.replace("bash: line", f"{path}: line"))
        checked += sum(1 for line in body if line.strip() and not line.strip().startswith("#"))
    if failed:
        raise SystemExit(1)
    print(checked)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "links":
        broken = check_links(sys.argv[2:])
        for line in broken:
            print(line)
        raise SystemExit(1 if broken else 0)
    if len(sys.argv) != 3 or sys.argv[1] not in ("run", "cluster"):
        raise SystemExit(__doc__)
    mode, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    if mode == "cluster":
        check_cluster_blocks(path, lines)
        return
    out = [""] * len(lines)
    for kind, start, body in shell_blocks(path, lines):
        if kind == "run":
            out[start : start + len(body)] = body
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
