#!/usr/bin/env python3
"""Fails when a registered CTest entry could pass without running a test.

GoogleTest 1.12 runs zero tests and exits 0 for a --gtest_filter that matches nothing, so a
ctest entry that names a renamed or deleted test would pass silently. For every entry of the
build tree (read back from `ctest --show-only=json-v1`):

  * a GoogleTest command (one with --gtest_filter=PATTERN) must match at least one test that
    its binary lists (--gtest_list_tests, matched as GoogleTest matches a filter);
  * a shell test driver (bash SCRIPT ARGS... CASE, the case last, dispatched by a `case`
    statement) must have a branch for CASE (the drivers also exit 2 on an unknown case, so
    this finds it before the run does).

Usage: check_registered_tests.py CTEST BUILD_DIR
"""
import fnmatch
import functools
import json
import re
import subprocess
import sys


@functools.lru_cache(maxsize=None)
def listed_tests(binary):
    out = subprocess.run([binary, "--gtest_list_tests"], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    names, suite = [], None
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            suite = line.split("#")[0].strip()
        else:
            names.append(suite + line.split("#")[0].strip())
    return tuple(names)


def matches(pattern, name):
    """GoogleTest's filter: positive patterns joined by ':', then '-' and negative ones."""
    positive, _, negative = pattern.partition("-")
    def any_of(patterns):
        return any(fnmatch.fnmatchcase(name, p) for p in patterns.split(":") if p)
    return any_of(positive or "*") and not any_of(negative)


def main():
    ctest, build_dir = sys.argv[1], sys.argv[2]
    report = json.loads(subprocess.run([ctest, "--show-only=json-v1"], cwd=build_dir, check=True,
                                       capture_output=True, text=True).stdout)
    problems, gtests, cases = [], 0, 0
    for test in report["tests"]:
        name, command = test["name"], test.get("command") or []
        if not command:
            problems.append(f"{name}: no command")
            continue
        filters = [a[len("--gtest_filter="):] for a in command if a.startswith("--gtest_filter=")]
        if filters:
            gtests += 1
            if not any(matches(filters[-1], t) for t in listed_tests(command[0])):
                problems.append(f"{name}: --gtest_filter={filters[-1]} matches no test of "
                                f"{command[0]}")
        elif len(command) >= 3 and command[0].endswith("bash") and command[1].endswith(".sh"):
            with open(command[1], encoding="utf-8") as f:
                script = f.read()
            if not re.search(r"^\s*esac\b", script, re.MULTILINE):
                continue  # a script that takes no case (it runs whole on its arguments)
            cases += 1
            case = command[-1]
            branch = re.compile(r"^\s*(?:[\w|\s]*\|\s*)?" + re.escape(case) + r"\s*(?:\|[\w|\s]*)?\)",
                                re.MULTILINE)
            if not branch.search(script):
                problems.append(f"{name}: {command[1]} has no case '{case}'")
    for p in problems:
        print("UNRUNNABLE " + p)
    print(f"checked {gtests} GoogleTest entries and {cases} shell cases of "
          f"{len(report['tests'])} registered tests: {len(problems)} would run nothing")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
