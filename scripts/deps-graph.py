#!/usr/bin/python3
"""Prints the module dependency graph (module -> modules whose header it
includes) and fails if two non-session modules depend on each other in a
cycle.  A module is a .c/.h pair; session files (sess*.c) form one
module, "sess"; X_int.h (a module's internal header) belongs to X.  Run from the repository root: scripts/deps-graph.py"""
import os
import re
import sys

DIRS = ["proto", "util", "nft", "conntrack", "rtnl", "client", "daemon"]
inc = re.compile(r'#include "([^"]+)\.h"')


def module(name):
    if name.startswith("sess"):
        return "sess"
    return name[:-4] if name.endswith("_int") else name


mods = {}
for d in DIRS:
    for f in sorted(os.listdir(d)):
        if not f.endswith((".c", ".h")):
            continue
        m = module(f[:-2])
        if f == "main.c":
            m = d + "/main"
        deps = mods.setdefault(m, set())
        for h in inc.findall(open(os.path.join(d, f)).read()):
            h = module(h)
            if h != m:
                deps.add(h)

graph = {m: sorted(v & set(mods)) for m, v in mods.items()}
for m in sorted(graph):
    print("%-12s -> %s" % (m, " ".join(graph[m]) or "-"))

# Tarjan's strongly connected components.
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = n[0]
    n[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop()
            on.discard(w)
            c.append(w)
            if w == v:
                break
        if len(c) > 1:
            sccs.append(sorted(c))


sys.setrecursionlimit(10000)
for v in graph:
    if v not in index:
        visit(v)
bad = [c for c in sccs if len([m for m in c if m != "sess"]) > 1]
for c in sccs:
    print("cycle:", " ".join(c), "" if c in bad else "(through the session files)")
if bad:
    print("modules outside the session files depend on each other in a cycle")
    sys.exit(1)
