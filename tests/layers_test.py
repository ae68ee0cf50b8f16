#!/usr/bin/env python3
"""The shape of the sources, checked on every test run (docs/design.md, "The layers").

1. The folders form a chain, executor -> reactor -> runtime -> net -> apps: a file may include its own
   folder and the folders below it, never one above. The root fiberio.hpp includes the public headers.
2. Every include of a fiberio header names it as <fiberio/FOLDER/...>, the form an installed copy serves
   (a quoted "net/error.hpp" would let a user's own header of that name shadow fiberio's).
3. The installed headers (the list `installed_headers` in meson.build) are closed: each fiberio header
   that one of them includes is installed too, and none of them is a detail/ header that no public header
   needs.

Usage: layers_test.py SOURCE_ROOT      exits 0 when all hold, 1 with one line per violation.
       layers_test.py --self-test      checks that the checks fail on a tree with an upward include.
"""
import os
import re
import shutil
import sys
import tempfile

CHAIN = ["executor", "reactor", "runtime", "net", "apps"]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def includes(path):
    with open(path, errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield number, m.group(1), m.group(2)


def source_files(root):
    for layer in CHAIN:
        for folder, _, files in os.walk(os.path.join(root, layer)):
            for name in sorted(files):
                if name.endswith((".hpp", ".cpp", ".h")):
                    yield layer, os.path.join(folder, name)


def installed_headers(root):
    text = open(os.path.join(root, "meson.build")).read()
    m = re.search(r"installed_headers = files\((.*?)\)", text, re.S)
    if not m:
        return None
    return set(re.findall(r"'([^']+\.hpp)'", m.group(1)))


def check(root):
    problems = []
    rank = {layer: i for i, layer in enumerate(CHAIN)}
    for layer, path in source_files(root):
        rel = os.path.relpath(path, root)
        for number, kind, target in includes(path):
            parts = target.split("/")
            if kind == '"' and parts[0] in rank:
                problems.append(f"{rel}:{number}: includes \"{target}\": write <fiberio/{target}>")
                continue
            if parts[0] != "fiberio" or len(parts) < 3:
                continue
            to = parts[1]
            if to in rank and rank[to] > rank[layer]:
                problems.append(f"{rel}:{number}: {layer}/ includes {target}, a layer above it "
                                f"(the chain is {' -> '.join(CHAIN)})")
    installed = installed_headers(root)
    if installed is None:
        problems.append("meson.build: no installed_headers = files(...) list")
        return problems
    needed = set()
    for header in sorted(installed):
        path = os.path.join(root, header)
        if not os.path.exists(path):
            problems.append(f"meson.build: installs {header}, which does not exist")
            continue
        for number, _, target in includes(path):
            if target.startswith("fiberio/"):
                dep = target[len("fiberio/"):]
                needed.add(dep)
                if dep not in installed:
                    problems.append(f"{header}:{number}: an installed header includes {dep}, which is not installed")
    for header in sorted(installed):
        if "/detail/" in header and header not in needed:
            problems.append(f"meson.build: installs {header}, an internal header no installed header includes")
    for layer in CHAIN[:-1]:
        folder = os.path.join(root, layer)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            rel = f"{layer}/{name}"
            if name.endswith(".hpp") and rel not in installed:
                problems.append(f"{rel}: a public header (not under detail/) that meson.build does not install")
    return problems


def self_test(root):
    """Copies the tree's core folders, plants an upward include, and expects the check to catch it."""
    with tempfile.TemporaryDirectory() as scratch:
        for layer in CHAIN[:-1]:
            shutil.copytree(os.path.join(root, layer), os.path.join(scratch, layer))
        for name in ("meson.build", "fiberio.hpp"):
            shutil.copy(os.path.join(root, name), scratch)
        os.makedirs(os.path.join(scratch, "apps"))
        if check(scratch):
            print("self-test: the copy of the tree already fails the check")
            return 1
        victim = os.path.join(scratch, "executor", "this_fiber.cpp")
        with open(victim, "a") as f:
            f.write("\n#include <fiberio/runtime/detail/worker.hpp>\n")
        found = check(scratch)
        if not any("executor/ includes fiberio/runtime/detail/worker.hpp" in p for p in found):
            print("self-test: an upward include executor -> runtime was not reported")
            return 1
        with open(os.path.join(scratch, "reactor", "backend.hpp"), "a") as f:
            f.write('\n#include "net/error.hpp"\n')
        if not any('includes "net/error.hpp"' in p for p in check(scratch)):
            print("self-test: a quoted include of a fiberio header was not reported")
            return 1
    print("self-test: upward and quoted includes are reported")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 2:
        print(__doc__)
        return 2
    problems = check(argv[1])
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"layers: {' -> '.join(CHAIN)}, no include points up; installed headers are closed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
