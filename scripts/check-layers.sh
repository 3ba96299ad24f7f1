#!/usr/bin/env bash
# Fail if an #include in src/ crosses a layer boundary or closes a cycle.
# The layers (README, "Architecture"): the HTTP library knows no registry;
# auth knows no HTTP; the API reaches storage only through the store
# interfaces; a driver sees only its own interface.  Each module below may
# include itself and the modules listed for it, nothing else.
#   scripts/check-layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

# module -> modules it may include (besides itself)
ALLOWED = {
    "common":         set(),
    "config":         {"common"},
    "oci":            {"common"},
    "http":           {"common"},
    "meta":           {"common"},
    "meta/sql":       {"common", "meta"},
    "meta/sqlite":    {"common", "meta", "meta/sql"},
    "meta/pg":        {"common", "meta", "meta/sql"},
    "storage":        {"common", "oci"},
    "storage/fs":     {"common", "storage"},
    "storage/faulty": {"common", "storage"},
    "storage/s3":     {"common", "oci", "storage"},
    "auth":           {"common", "oci", "meta"},
    "maint":          {"common", "oci", "meta", "storage"},
    "api":            {"common", "oci", "config", "http", "auth", "meta", "storage"},
    "edge":           {"common", "oci", "http", "storage"},
    "cmd":            None,  # programs wire everything together
}

def module_of(path):
    # src/meta/sqlite/x.c -> meta/sqlite; src/http/x.c -> http
    parts = path.split("/")
    for depth in (2, 1):
        m = "/".join(parts[:depth])
        if m in ALLOWED and len(parts) > depth:
            return m
    return None

edges, bad = {}, []
for root, _, files in os.walk("src"):
    for f in files:
        if not f.endswith((".c", ".h")):
            continue
        path = os.path.join(root, f)
        src = module_of(os.path.relpath(path, "src"))
        if src is None:
            bad.append(f"{path}: in no known module (add it to scripts/check-layers.sh)")
            continue
        for line in open(path, encoding="utf-8", errors="replace"):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            target = module_of(m.group(1))
            if target is None or target == src:
                continue
            edges.setdefault(src, set()).add(target)
            if ALLOWED[src] is not None and target not in ALLOWED[src]:
                bad.append(f"{path}: {src} must not include {m.group(1)} ({target})")

# A cycle among modules, by depth-first search.
state = {}
def visit(node, stack):
    state[node] = 1
    for nxt in sorted(edges.get(node, ())):
        if state.get(nxt) == 1:
            bad.append("include cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
        elif nxt not in state:
            visit(nxt, stack + [nxt])
    state[node] = 2
for n in sorted(edges):
    if n not in state:
        visit(n, [n])

for b in bad:
    print(b)
if bad:
    sys.exit(1)
print("layers: %d modules, %d dependencies, no violation, no cycle" %
      (len(edges), sum(len(v) for v in edges.values())))
PY
