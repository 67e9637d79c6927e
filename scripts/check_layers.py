#!/usr/bin/env python3
"""scripts/check_layers.py - fails when files of src/ depend on each other in a circle.

    scripts/check_layers.py OBJ_DIR [SRC_DIR]

File a depends on file b when a.c calls a function or uses a variable that
b.c defines (read from the object files with `nm`: a's undefined symbols
against b's defined ones), or when a.c or a.h includes b.h.  Every strongly
connected group of more than one file is a circle: each is printed with the
edges that close it, and the exit status is 1.  With no circle the layers are
printed bottom-up (files that depend on nothing first) and the exit status
is 0.  `make check-layers` runs it over the release objects; CI runs that.
"""

import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)


def symbols(obj):
    """(defined, undefined) global symbol names of one object file."""
    out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
    return defined, undefined


def graph(obj_dir, src_dir):
    stems = sorted(f[:-2] for f in os.listdir(src_dir) if f.endswith(".c"))
    edges = {s: {} for s in stems}  # a -> {b: why}
    owner, needs = {}, {}
    for s in stems:
        obj = os.path.join(obj_dir, s + ".o")
        if not os.path.exists(obj):
            sys.exit("check_layers: no object %s (build first)" % obj)
        defined, needs[s] = symbols(obj)
        for name in defined:
            owner[name] = s
    for s in stems:
        for name in sorted(needs[s]):
            b = owner.get(name)
            if b is not None and b != s:
                edges[s].setdefault(b, "calls " + name)
        for ext in (".c", ".h"):
            path = os.path.join(src_dir, s + ext)
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                for inc in INCLUDE.findall(f.read()):
                    if inc != s and inc in edges:
                        edges[s].setdefault(inc, "includes %s.h" % inc)
    return edges


def circles(edges):
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def layers(edges):
    level = {}

    def depth(v):
        if v not in level:
            level[v] = 0
            level[v] = 1 + max((depth(w) for w in edges[v]), default=-1)
        return level[v]

    for v in edges:
        depth(v)
    by = {}
    for v, d in level.items():
        by.setdefault(d, []).append(v)
    return [sorted(by[d]) for d in sorted(by)]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    obj_dir = sys.argv[1]
    src_dir = sys.argv[2] if len(sys.argv) == 3 else "src"
    edges = graph(os.path.join(obj_dir, src_dir), src_dir)
    found = circles(edges)
    for group in found:
        print("circle: " + " <-> ".join(group))
        for a in group:
            for b in group:
                if b in edges[a]:
                    print("    %s -> %s (%s)" % (a, b, edges[a][b]))
    if found:
        print("check_layers: %d circle(s) among the files of %s/" % (len(found), src_dir))
        return 1
    for i, layer in enumerate(layers(edges)):
        print("layer %d: %s" % (i, " ".join(layer)))
    print("check_layers: no circle among the %d files of %s/" % (len(edges), src_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
