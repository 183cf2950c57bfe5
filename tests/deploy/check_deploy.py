#!/usr/bin/python3
"""Checks deploy/ against the programs it runs, without a cluster.

  check_deploy.py --repo DIR --server PEAKNAS_SERVER --worker PEAKNAS_WORKER --cli PEAKNAS
                  [--kubectl KUBECTL] [--schemas DIR] [--self-test]

Renders every Kustomize overlay under deploy/kubernetes/overlays with `kubectl kustomize` and,
in each rendered object:
  * every flag a container passes to peaknas-server or peaknas-worker (serve), or a probe to
    peaknas (health), is one its `--help` lists, so that a renamed flag fails here;
  * the ports agree: each container port named by a listen flag (--listen, --http-listen)
    carries that flag's port; every Service's targetPort and every probe's port is a port its
    container declares; a worker's --coordinator names a Service and one of its ports;
  * every volume mount has its volume, and every secret a volume names is one deploy/README.md
    tells the operator to create;
  * with --schemas DIR, every object is valid against the Kubernetes API's schemas (the npm
    package kubernetes-models, pinned in tests/deploy/package-lock.json, installed into DIR
    with `npm ci` when DIR does not hold that lock's install yet; run by
    tests/deploy/validate_schemas.js).
--self-test breaks a rendered overlay in each of those ways and fails unless each is reported.
Exit status: 0 when all hold; 1 with one line per problem; 77 (skipped) without kubectl.
"""
import argparse
import copy
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

LISTEN_FLAGS = ("--listen", "--http-listen")


def help_flags(argv):
    """The long flags `argv --help` lists."""
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", out))


def render(kubectl, overlay):
    """The objects `kubectl kustomize overlay` renders."""
    out = subprocess.run([kubectl, "kustomize", overlay], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{overlay}: kubectl kustomize failed: {out.stderr.strip()}")
    return [o for o in yaml.safe_load_all(out.stdout) if o]


def pod_spec(obj):
    if obj.get("kind") in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return obj["spec"]["template"]["spec"]
    return None


def flag_value(args, flag):
    for a in args:
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    for a, b in zip(args, args[1:]):
        if a == flag:
            return b
    return None


def subcommand_flags(program):
    """A function from a command line's arguments to the flags `program [SUBCOMMAND] --help`
    lists (SUBCOMMAND: the first argument when it is not a flag), each help read once."""
    cache = {}

    def flags(argv):
        sub = argv[0] if argv and not argv[0].startswith("-") else ""
        if sub not in cache:
            cache[sub] = help_flags([program] + ([sub] if sub else []))
        return cache[sub]

    return flags


def check_command(where, argv, flags_of):
    """The flags of `argv` (a peaknas program and its arguments) that its --help lacks."""
    program = os.path.basename(argv[0])
    if program not in flags_of:
        return [f"{where}: runs {program}, not a peaknas program"]
    known = flags_of[program](argv[1:])
    return [f"{where}: {a.split('=', 1)[0]} is not a flag of {program} "
            f"(its --help lists {len(known)} others)"
            for a in argv[1:] if a.startswith("--") and a.split("=", 1)[0] not in known]


def check(objects, flags_of, secrets_documented):
    """The problems in one overlay's objects, one string each."""
    problems = []
    services = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Service"}
    pods = [(o, pod_spec(o)) for o in objects if pod_spec(o) is not None]
    for obj, spec in pods:
        where = f'{obj["kind"]}/{obj["metadata"]["name"]}'
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        for v in volumes.values():
            secret = v.get("secret", {}).get("secretName")
            if secret and secret not in secrets_documented:
                problems.append(f"{where}: secret {secret} is not in deploy/README.md")
        for c in spec["containers"]:
            cwhere = f'{where} container {c["name"]}'
            command = c.get("command", [])
            args = list(c.get("args", []))
            if not command:
                problems.append(f"{cwhere}: runs nothing, not a peaknas program")
                continue
            problems += check_command(cwhere, command + args, flags_of)
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for flag in LISTEN_FLAGS:
                value = flag_value(args, flag)
                if value is None:
                    continue
                port = int(value.rsplit(":", 1)[1])
                if port not in ports.values():
                    problems.append(f"{cwhere}: {flag}={value} but no container port {port}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                p = c.get(probe)
                if not p:
                    continue
                probe_command = p.get("exec", {}).get("command", [])
                if probe_command:
                    problems += check_command(f"{cwhere} {probe}", probe_command, flags_of)
                    continue
                port = next(iter(x["port"] for x in p.values() if isinstance(x, dict) and "port" in x), None)
                if port is not None and port not in ports and port not in ports.values():
                    problems.append(f"{cwhere}: {probe} port {port} is not a container port")
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes and m["name"] not in claims:
                    problems.append(f'{cwhere}: mount {m["name"]} has no volume')
            coordinator = flag_value(args, "--coordinator")
            if coordinator is not None:
                host, port = coordinator.rsplit(":", 1)
                service = services.get(host.split(".")[0])
                if service is None:
                    problems.append(f"{cwhere}: --coordinator {coordinator}: no Service {host}")
                elif int(port) not in [p["port"] for p in service["spec"]["ports"]]:
                    problems.append(f"{cwhere}: --coordinator {coordinator}: Service {host} "
                                    f"has no port {port}")
    for name, service in services.items():
        selected = [(o, s) for o, s in pods
                    if all(o["spec"]["template"]["metadata"]["labels"].get(k) == v
                           for k, v in service["spec"]["selector"].items())]
        if not selected:
            problems.append(f"Service/{name}: selects no pod")
            continue
        declared = set()
        for _, s in selected:
            for c in s["containers"]:
                for p in c.get("ports", []):
                    declared.update([p.get("name"), p["containerPort"]])
        for p in service["spec"]["ports"]:
            if p.get("targetPort", p["port"]) not in declared:
                problems.append(f'Service/{name}: targetPort {p.get("targetPort")} is not a '
                                f"port of the pods it selects")
    return problems


def self_test(objects, flags_of, secrets):
    """Breaks `objects` (an overlay with a worker and a coordinator) in each way check() must
    catch; returns what it missed."""
    missed = []

    def container(objs, kind):
        for o in objs:
            if o.get("kind") == kind:
                return pod_spec(o)["containers"][0]
        raise RuntimeError(f"no {kind} in the overlay")

    def expect(name, mutate, pattern):
        broken = copy.deepcopy(objects)
        mutate(broken)
        found = check(broken, flags_of, secrets)
        if not any(re.search(pattern, p) for p in found):
            missed.append(f"self-test {name}: expected a problem matching {pattern!r}, got {found}")

    expect("renamed worker flag",
           lambda o: container(o, "Deployment")["args"].append("--lease-wait-seconds=5"),
           r"--lease-wait-seconds is not a flag of peaknas-worker")
    expect("renamed server flag",
           lambda o: container(o, "StatefulSet")["args"].append("--database=/x"),
           r"--database is not a flag of peaknas-server")
    def replace(c, flag, value):
        c["args"] = [value if a.startswith(flag + "=") else a for a in c["args"]]

    expect("listen port without container port",
           lambda o: replace(container(o, "StatefulSet"), "--listen", "--listen=0.0.0.0:6000"),
           r"--listen=0.0.0.0:6000 but no container port 6000")
    expect("wrong coordinator port",
           lambda o: replace(container(o, "Deployment"), "--coordinator",
                             "--coordinator=peaknas-coordinator:1"),
           r"has no port 1")
    expect("probe on an undeclared port",
           lambda o: container(o, "StatefulSet")["livenessProbe"]["httpGet"].update(port="http"),
           r"livenessProbe port http is not a container port")
    expect("renamed flag in a probe",
           lambda o: container(o, "StatefulSet")["readinessProbe"]["exec"]["command"].append(
               "--ca-file=/x"),
           r"readinessProbe: --ca-file is not a flag of peaknas")
    expect("undocumented secret",
           lambda o: [v.update(secret={"secretName": "other"}) for x in o if pod_spec(x)
                      for v in pod_spec(x).get("volumes", []) if "secret" in v],
           r"secret other is not in deploy/README.md")
    if check(objects, flags_of, secrets):
        missed.append("self-test: the unbroken overlay has problems")
    return missed


def install_schemas(directory):
    """`npm ci` of tests/deploy/package.json into `directory`, unless it holds that lock's
    install already. Raises RuntimeError naming what failed."""
    os.makedirs(directory, exist_ok=True)
    lock = os.path.join(HERE, "package-lock.json")
    installed = os.path.join(directory, "package-lock.json")
    if (os.path.exists(installed) and filecmp.cmp(lock, installed, shallow=False)
            and os.path.isdir(os.path.join(directory, "node_modules", "kubernetes-models"))):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: the schemas (kubernetes-models) cannot be installed")
    shutil.copy(os.path.join(HERE, "package.json"), directory)
    shutil.copy(lock, directory)
    out = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                         cwd=directory, capture_output=True, text=True)
    if out.returncode != 0:
        os.remove(installed)
        raise RuntimeError(f"npm ci in {directory} failed: {out.stderr.strip()[-500:]}")


def schema_problems(rendered, directory):
    """One line per object of `rendered` ({overlay: objects}) the schemas refuse."""
    node = shutil.which("node")
    if node is None:
        return ["node not found: the schemas cannot be checked"]
    entries = [{"where": os.path.basename(overlay), "object": o}
               for overlay, objects in rendered.items() for o in objects]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(entries, f)
        f.flush()
        out = subprocess.run([node, os.path.join(HERE, "validate_schemas.js"), f.name],
                             capture_output=True, text=True,
                             env=dict(os.environ, NODE_PATH=os.path.join(directory, "node_modules")))
    lines = out.stdout.strip().splitlines()
    if out.returncode == 0:
        return []
    return [l for l in lines if not l.startswith("validate_schemas:")] or [
        f"validate_schemas.js failed ({out.returncode}): {out.stderr.strip()[-500:]}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--server", required=True, help="the built peaknas-server")
    parser.add_argument("--worker", required=True, help="the built peaknas-worker")
    parser.add_argument("--cli", required=True, help="the built peaknas")
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--schemas", metavar="DIR",
                        help="also validate against the Kubernetes schemas installed in DIR")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    kubectl = shutil.which(args.kubectl)
    if kubectl is None:
        print(f"check_deploy: {args.kubectl} not found; the Kustomize overlays are not checked "
              "(skipped)")
        return 77

    flags_of = {"peaknas-server": subcommand_flags(args.server),
                "peaknas-worker": subcommand_flags(args.worker),
                "peaknas": subcommand_flags(args.cli)}
    readme = open(os.path.join(args.repo, "deploy", "README.md")).read()
    secrets = set(re.findall(r"secret (?:generic |tls )?([a-z0-9-]+)", readme))
    overlays_dir = os.path.join(args.repo, "deploy", "kubernetes", "overlays")
    overlays = sorted(os.path.join(overlays_dir, d) for d in os.listdir(overlays_dir))
    problems = []
    rendered = {}
    for overlay in overlays:
        try:
            rendered[overlay] = render(kubectl, overlay)
        except RuntimeError as e:
            problems.append(str(e))
            continue
        problems += [f"{os.path.basename(overlay)}: {p}"
                     for p in check(rendered[overlay], flags_of, secrets)]
    if args.schemas:
        try:
            install_schemas(args.schemas)
            problems += schema_problems(rendered, args.schemas)
            if args.self_test:
                broken = copy.deepcopy(rendered[overlays[0]])
                for o in broken:
                    if o.get("kind") == "StatefulSet":
                        o["spec"]["replicas"] = "one"
                found = schema_problems({"broken": broken}, args.schemas)
                if not any("replicas must be integer" in p for p in found):
                    problems.append(f"self-test schema: a string replicas count was not "
                                    f"refused: {found}")
        except RuntimeError as e:
            problems.append(str(e))
    if args.self_test:
        problems += self_test(rendered[overlays[0]], flags_of, secrets)
    for p in problems:
        print(p)
    if not problems:
        print(f"check_deploy: {len(overlays)} overlays render and match the programs' flags and "
              f"ports" + (", and the Kubernetes schemas" if args.schemas else "") +
              (", and the checker catches each kind of mistake" if args.self_test else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
