#!/usr/bin/env python3
"""The library's modules form layers: no import cycle between top-level modules.

Walks every `.rs` file of the library (`src/`, without `src/bin/` and the crate root
`src/lib.rs`, which re-exports everything), finds each reference to `crate::<module>` (also
inside `use crate::{a, b::c}` groups, `$crate::` and `super::` paths that climb to the crate
root) outside comments, string literals and `#[cfg(test)]` items, and builds the graph of
top-level modules: `src/verify/chain.rs` is `verify`, `src/limits.rs` is `limits`. Fails, printing
the cycle, if the graph has one; otherwise prints each module's dependencies.

Usage: .ci/module_graph.py [SRC_DIR]   (default: src)
"""

import os
import re
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_comments_and_strings(text):
    """Blanks comments and string literals (keeping line breaks), so only code is searched."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not text[i - 1].isalnum()):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            # A char literal (so that '"' or '{' is not read as code); lifetimes stay.
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_cfg_test(code):
    """Removes every item marked `#[cfg(test)]`: a `mod x { ... }` block or a single item."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]", code)
        if not m:
            return code
        i = m.end()
        # The item ends at the `;` before any `{`, or at the `}` that closes its first `{`.
        j = i
        while j < len(code) and code[j] not in "{;":
            j += 1
        if j < len(code) and code[j] == "{":
            depth = 0
            while j < len(code):
                if code[j] == "{":
                    depth += 1
                elif code[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
        code = code[: m.start()] + "\n" * code.count("\n", m.start(), j + 1) + code[j + 1 :]


def group_heads(code, start):
    """The first identifiers of the items of the `{...}` group opening at `start`."""
    heads, depth, item_start = [], 0, True
    i = start
    while i < len(code):
        c = code[i]
        if c == "{":
            depth += 1
            item_start = depth == 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                break
        elif c == "," and depth == 1:
            item_start = True
        elif item_start and depth == 1:
            m = IDENT.match(code, i)
            if m:
                heads.append(m.group(0))
                item_start = False
                i = m.end()
                continue
        i += 1
    return heads


def module_of(path, src):
    """`(top-level module, module path)` of a library file, e.g. `("verify", ["verify", "chain"])`."""
    rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return rel[0], rel


def references(code, module_path):
    """The top-level modules a file's code names through the crate root."""
    found = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_])\$?crate\s*::\s*", code):
        rest = m.end()
        if code.startswith("{", rest):
            found.update(group_heads(code, rest))
        else:
            ident = IDENT.match(code, rest)
            if ident:
                found.add(ident.group(0))
    # `super::super::x` from a file deep enough to reach the crate root.
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:super\s*::\s*)+)", code):
        ups = m.group(1).count("super")
        if ups == len(module_path):
            rest = m.end()
            if code.startswith("{", rest):
                found.update(group_heads(code, rest))
            else:
                ident = IDENT.match(code, rest)
                if ident:
                    found.add(ident.group(0))
    return found


def find_cycle(graph):
    """One cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    files = []
    for root, dirs, names in os.walk(src):
        if os.path.relpath(root, src).split(os.sep)[0] == "bin":
            continue
        files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
    top = {module_of(f, src)[0] for f in files if os.path.relpath(f, src) != "lib.rs"}
    graph = {m: set() for m in top}
    base = os.path.dirname(os.path.abspath(src))
    where = {}
    for path in sorted(files):
        if os.path.relpath(path, src) == "lib.rs":
            continue
        module, module_path = module_of(path, src)
        with open(path, encoding="utf-8") as f:
            code = strip_cfg_test(strip_comments_and_strings(f.read()))
        for target in references(code, module_path):
            if target in top and target != module:
                graph[module].add(target)
                where.setdefault((module, target), os.path.relpath(path, base))
    cycle = find_cycle(graph)
    if cycle:
        print("import cycle between the library's top-level modules:", file=sys.stderr)
        print("  " + " -> ".join(cycle), file=sys.stderr)
        for a, b in zip(cycle, cycle[1:]):
            print(f"  {a} -> {b}: first in {where[(a, b)]}", file=sys.stderr)
        return 1
    for module in sorted(graph):
        deps = ", ".join(sorted(graph[module])) or "-"
        print(f"{module}: {deps}")
    print(f"ok: {len(graph)} top-level modules, no import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
