#!/usr/bin/env python3
"""Fails when a library includes what its layer may not depend on (README, "Repository layout").

Rules, over every tracked C++ file (*.h, *.cc) of the source tree, by its #include "..." lines
and its <...> headers:

  * base/ includes only base/, the C++ standard library and POSIX (CLI11 in app.cc, OpenSSL
    in sha256.cc; tests add GoogleTest);
  * search/ (the space and the cost model) includes only search/ and base/ headers and the
    C++ standard library; nlohmann-json only in search/*.cc, never in a header (tests add
    GoogleTest);
  * the coordinator's strategies and frontier arithmetic (server/strategy*, server/pruning*,
    server/frontier*) include only search/ and each other: no protobuf, gRPC or SQLite;
  * nothing outside cli/ includes cli/: the client program is a leaf;
  * LibTorch (<torch/...>, <ATen/...>, <c10/...>) only under worker/ and bench/;
  * Boost.Beast only in the files named in BEAST_ALLOWED.

Usage: check_dependencies.py SOURCE_DIR
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
STD_HEADERS = {
    "algorithm", "any", "array", "atomic", "bit", "bitset", "cassert", "cctype", "cerrno",
    "cfloat", "charconv", "stdlib.h", "chrono", "cinttypes", "climits", "cmath", "compare", "concepts",
    "condition_variable", "cstddef", "cstdint", "cstdio", "cstdlib", "cstring", "ctime",
    "deque", "exception", "filesystem", "fstream", "functional", "initializer_list", "iomanip",
    "ios", "iosfwd", "iostream", "istream", "iterator", "limits", "list", "map", "memory",
    "mutex", "new", "numeric", "optional", "ostream", "queue", "random", "ratio", "set",
    "shared_mutex", "span", "sstream", "stdexcept", "stop_token", "streambuf", "string",
    "string_view", "system_error", "thread", "tuple", "type_traits", "typeinfo", "unordered_map",
    "unordered_set", "utility", "variant", "vector",
}
# The C library and POSIX, allowed in base/ (subprocess.h), not in search/.
POSIX_HEADERS = {"fcntl.h", "poll.h", "pthread.h", "signal.h", "stdlib.h", "unistd.h",
                 "sys/prctl.h", "sys/types.h", "sys/wait.h"}
TORCH = ("torch/", "ATen/", "c10/")
BEAST_ALLOWED = {"server/http_server.cc"}


def tracked_files(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "*.h", "*.cc"], check=True,
                         capture_output=True, text=True).stdout
    return [p for p in out.split() if p]


def includes(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


def check(root):
    problems = []
    for path in tracked_files(root):
        top = path.split("/", 1)[0]
        name = os.path.basename(path)
        strategies = top == "server" and re.match(r"(strategy|pruning|frontier)", name)
        for kind, header in includes(root, path):
            shown = f"<{header}>" if kind == "<" else f'"{header}"'
            where = f"{path}: #include {shown}"
            test = name.endswith("_test.cc") or name.endswith("_test_util.h")
            if kind == '"' and header.startswith("cli/") and top != "cli":
                problems.append(f"{where}: nothing outside cli/ may depend on the client program")
            if kind == "<" and header.startswith(TORCH) and top not in ("worker", "bench"):
                problems.append(f"{where}: LibTorch only in worker/ and bench/")
            if kind == "<" and header.startswith("boost/beast") and path not in BEAST_ALLOWED:
                problems.append(f"{where}: Boost.Beast only in {sorted(BEAST_ALLOWED)}")
            if top == "base":
                if kind == '"' and not header.startswith("base/"):
                    problems.append(f"{where}: base/ includes only base/")
                if kind == "<" and header not in STD_HEADERS | POSIX_HEADERS and not (
                        (header.startswith("CLI/") and name in ("app.cc", "app_test.cc")) or
                        (header.startswith("openssl/") and name == "sha256.cc") or
                        (test and header.startswith("gtest/"))):
                    problems.append(f"{where}: base/ includes only the standard library and "
                                    "POSIX (CLI11 in app.cc, OpenSSL in sha256.cc)")
            if top == "search":
                if kind == '"' and not header.startswith(("search/", "base/")):
                    problems.append(f"{where}: search/ includes only search/ and base/")
                if kind == "<" and header not in STD_HEADERS and not (
                        header.startswith("nlohmann/") and path.endswith(".cc")) and not (
                        test and header.startswith("gtest/")):
                    problems.append(f"{where}: search/ includes only the standard library "
                                    "(nlohmann-json in its .cc files)")
            if strategies:
                if kind == '"' and not header.startswith(("search/", "base/", "server/strategy",
                                                          "server/frontier")):
                    problems.append(f"{where}: the strategies include only search/, base/ and "
                                    "each other (no protobuf, gRPC, SQLite)")
                if kind == "<" and header not in STD_HEADERS and not (
                        test and header.startswith("gtest/")):
                    problems.append(f"{where}: the strategies include only the standard library")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(sys.argv[1])
    for p in problems:
        print(p)
    print(f"{len(problems)} dependency problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
