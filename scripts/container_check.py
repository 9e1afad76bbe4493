#!/usr/bin/env python3
"""The checks behind scripts/container-check (run it, not this file, which expects the tool paths).

Performs the Dockerfile's runtime steps outside Docker and checks them, and checks that the
Dockerfile, docker-compose.yml, deploy/task-definition.json and deploy/cloudformation.yaml agree.
One line per check; exit status 1 when any failed. Needs PyYAML (the cfn-lint virtualenv has it).
"""
import argparse
import fnmatch
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
COMPOSE = os.path.join(ROOT, "docker-compose.yml")
TASKDEF = os.path.join(ROOT, "deploy", "task-definition.json")
CFN = os.path.join(ROOT, "deploy", "cloudformation.yaml")
ROUTING = os.path.join(ROOT, "deploy", "fluent-bit-routing.conf")
CI_USER = "todo-api-ci"
APP = "todo-api"            # the app container's name in the task definitions
ROUTER = "log_router"       # the FireLens container's name
ALB_IDLE_TIMEOUT = 60       # the ALB default, which the README tells operators to keep
SWIFT_RUNTIME_LIBS = re.compile(r"lib(swift\w*|dispatch|BlocksRuntime|Foundation\w*|_Foundation\w*)\.so")


class CheckFailed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise CheckFailed(message)


results = []


def check(name):
    """Decorator: runs the check, prints `ok`/`FAIL` and one line of detail."""
    def wrap(function):
        def run(*args, **kwargs):
            try:
                detail = function(*args, **kwargs)
                print(f"container-check: ok   {name}: {detail}", flush=True)
                results.append(True)
            except CheckFailed as error:
                print(f"container-check: FAIL {name}: {error}", flush=True)
                results.append(False)
            except Exception as error:  # a bug or an unreadable file: still one line, still a failure
                print(f"container-check: FAIL {name}: {type(error).__name__}: {error}", flush=True)
                results.append(False)
        return run
    return wrap


def skip(name, reason):
    print(f"container-check: skip {name}: {reason}", flush=True)


# ---- parsing ----------------------------------------------------------------------------------

def parse_duration(text):
    """`30s`, `5m`, `500ms`, `2` (seconds), or a number: seconds as a float."""
    if isinstance(text, (int, float)):
        return float(text)
    total, rest = 0.0, str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", rest):
        return float(rest)
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", rest):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    require(re.fullmatch(r"((\d+(\.\d+)?)(ms|h|m|s))+", rest), f"cannot read the duration {text!r}")
    return total


class Dockerfile:
    """Instructions per stage, with the global ARGs substituted into FROM."""

    def __init__(self, path):
        self.stages = []          # [{"from": image, "name": alias, "instructions": [(KEYWORD, args)]}]
        global_args = {}
        logical, current = [], ""
        for raw in open(path, encoding="utf-8").read().splitlines():
            stripped = raw.strip()
            if stripped.startswith("#") or (not stripped and not current):
                continue
            if stripped.endswith("\\"):
                current += stripped[:-1] + " "
                continue
            current += stripped
            logical.append(current.strip())
            current = ""
        if current.strip():
            logical.append(current.strip())
        for line in logical:
            keyword, _, args = line.partition(" ")
            keyword, args = keyword.upper(), args.strip()
            if keyword == "FROM":
                words = args.split()
                image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m.group(1) or m.group(2), m.group(0)), words[0])
                name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
                self.stages.append({"from": image, "name": name, "instructions": []})
            elif not self.stages and keyword == "ARG":
                key, _, value = args.partition("=")
                global_args[key] = value
            elif self.stages:
                self.stages[-1]["instructions"].append((keyword, args))

    @property
    def runtime(self):
        return self.stages[-1]

    def stage(self, name):
        return next(s for s in self.stages if s["name"] == name)

    def all(self, keyword, stage=None):
        stage = stage or self.runtime
        return [args for k, args in stage["instructions"] if k == keyword]

    def last(self, keyword, stage=None):
        found = self.all(keyword, stage)
        return found[-1] if found else None

    @staticmethod
    def exec_form(args):
        require(args.startswith("["), f"not in JSON (exec) form: {args}")
        return json.loads(args)

    def env(self):
        values = {}
        for args in self.all("ENV"):
            words = shlex.split(args)
            if words and "=" not in words[0]:        # legacy `ENV KEY value`
                values[words[0]] = " ".join(words[1:])
                continue
            for word in words:
                key, _, value = word.partition("=")
                values[key] = value
        return values

    def healthcheck(self):
        args = self.last("HEALTHCHECK")
        require(args, "the runtime stage has no HEALTHCHECK")
        options = dict(re.findall(r"--([a-z-]+)=(\S+)", args))
        command = re.sub(r"^(--[a-z-]+=\S+\s+)*", "", args)
        require(command.startswith("CMD "), f"HEALTHCHECK without CMD: {args}")
        argv = self.exec_form(command[4:].strip())
        return argv, options

    def apt_packages(self, stage=None):
        """Package names of the stage's `apt-get install` (options and =version pins removed)."""
        packages = []
        for args in self.all("RUN", stage):
            for segment in re.split(r"&&|;|\|\|", args):
                words = shlex.split(segment)
                while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                    words.pop(0)                         # VAR=value apt-get ...
                if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                    after = words[words.index("install") + 1:]
                    packages += [w.split("=")[0] for w in after if not w.startswith("-")]
        return packages

    def copies(self, stage=None):
        """[(options, sources, destination)] of COPY and ADD in the stage."""
        result = []
        for keyword, args in (stage or self.runtime)["instructions"]:
            if keyword not in ("COPY", "ADD"):
                continue
            words = shlex.split(args)
            options = {}
            while words and words[0].startswith("--"):
                key, _, value = words.pop(0)[2:].partition("=")
                options[key] = value
            options["instruction"] = keyword
            result.append((options, words[:-1], words[-1]))
        return result


def cfn_loader():
    """A YAML loader for CloudFormation: !Ref, !Sub, !GetAtt, !If, ... become their long forms."""
    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "Condition":
            return {"Condition": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Fn::" + suffix: value}

    Loader.add_multi_constructor("!", construct)
    return Loader


class Template:
    """The CloudFormation template, with values resolved the way a default deployment resolves
    them: parameters to their defaults (or `<Name>` when they have none), conditions true."""

    def __init__(self, path):
        self.data = yaml.load(open(path, encoding="utf-8"), Loader=cfn_loader())
        self.parameters = self.data.get("Parameters", {})

    def resources(self, kind):
        return {name: r for name, r in self.data["Resources"].items() if r["Type"] == kind}

    def resolve(self, value):
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name == "AWS::NoValue":
                return NO_VALUE
            if name.startswith("AWS::"):
                return {"AWS::Region": "<REGION>", "AWS::AccountId": "<ACCOUNT_ID>", "AWS::Partition": "aws"}.get(name, f"<{name}>")
            if name in self.parameters:
                default = self.parameters[name].get("Default")
                return str(default) if default not in (None, "") else f"<{name}>"
            return f"<{name}>"
        if set(value) == {"Fn::If"}:
            return self.resolve(value["Fn::If"][1])
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return re.sub(r"\$\{([^!}][^}]*)\}", lambda m: str(self.resolve({"Ref": m.group(1)})), text)
        if set(value) == {"Fn::GetAtt"}:
            return "<{}>".format(".".join(value["Fn::GetAtt"]))
        if len(value) == 1 and next(iter(value)).startswith("Fn::"):
            return f"<{next(iter(value))}>"
        return {k: self.resolve(v) for k, v in value.items()}

    @staticmethod
    def optional_names(entries):
        """Names of environment entries that exist only under a condition (!If ..., !Ref AWS::NoValue)."""
        names = set()
        for entry in entries:
            if isinstance(entry, dict) and set(entry) == {"Fn::If"}:
                branch = entry["Fn::If"][1]
                if isinstance(branch, dict) and "Name" in branch:
                    names.add(branch["Name"])
        return names


NO_VALUE = object()


def api_shape(value, free_form=False):
    """CloudFormation's PascalCase properties → the ECS API's camelCase (task-definition.json)."""
    if isinstance(value, list):
        return [api_shape(v) for v in value]
    if isinstance(value, dict):
        if free_form:
            return dict(value)
        return {k[:1].lower() + k[1:]: api_shape(v, free_form=k in ("Options", "DockerLabels")) for k, v in value.items()}
    return value


def cfn_shape(value, free_form=False):
    """The reverse of api_shape: the ECS API's camelCase → CloudFormation's PascalCase."""
    if isinstance(value, list):
        return [cfn_shape(v) for v in value]
    if isinstance(value, dict):
        if free_form:
            return dict(value)
        return {k[:1].upper() + k[1:]: cfn_shape(v, free_form=k in ("options", "dockerLabels")) for k, v in value.items()}
    return value


def is_placeholder(value):
    return isinstance(value, str) and re.search(r"<[A-Za-z_:.]+>", value) is not None


def same(a, b):
    """Equal, where a placeholder (<REGION>, <LogBucketName>, ...) matches anything."""
    if is_placeholder(a) or is_placeholder(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return str(a) == str(b) if isinstance(a, (str, int, float, bool)) and isinstance(b, (str, int, float, bool)) else a == b


def by_name(containers):
    return {c["name"]: c for c in containers}


def env_of(container, key="environment"):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get(key, [])}


def known_settings():
    """Environment variables the binary reads, from the sources (plus libpq's PG* variables)."""
    names = set()
    for directory, _, files in os.walk(os.path.join(ROOT, "Sources")):
        for file in files:
            if file.endswith(".swift"):
                text = open(os.path.join(directory, file), encoding="utf-8").read()
                names.update(re.findall(r'environment: "([A-Z0-9_]+)"', text))
                names.update(re.findall(r'(?:timeout|text|integer|rateLimit)\("([A-Z0-9_]+)"', text))
                names.update(re.findall(r'environment\["([A-Z0-9_]+)"\]', text))
    return names


def routing_text(path=ROUTING):
    """The routing config without its comment header: what the log router writes and runs."""
    lines = [l for l in open(path, encoding="utf-8").read().splitlines() if not l.lstrip().startswith("#")]
    return "\n".join(lines).strip() + "\n"


def routing_regex(text):
    rule = re.search(r"^\s*Rule\s+\$log\s+(\S+)\s+\S+\s+(true|false)\s*$", text, re.M)
    require(rule, "no `Rule $log REGEX TAG KEEP` in the routing config")
    return re.compile(rule.group(1)), rule.group(2)


# ---- the checks -------------------------------------------------------------------------------

def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


@check("binary built with --static-swift-stdlib")
def check_static(binary):
    require(os.path.isfile(binary) and os.access(binary, os.X_OK),
            f"{binary} is missing: build it with `swift build -c release --static-swift-stdlib --product todo-api`")
    header = run(["readelf", "-h", binary])
    require(header.returncode == 0 and "ELF" in header.stdout, f"{binary} is not an ELF executable")
    ldd = run(["ldd", binary])
    require(ldd.returncode == 0, f"ldd failed: {ldd.stderr.strip() or ldd.stdout.strip()}")
    dynamic_swift = sorted({m.group(0) for m in SWIFT_RUNTIME_LIBS.finditer(ldd.stdout)})
    require(not dynamic_swift, f"links the Swift runtime dynamically ({', '.join(dynamic_swift)}): "
                               "build with --static-swift-stdlib")
    missing = [l.split()[0] for l in ldd.stdout.splitlines() if "not found" in l]
    require(not missing, f"libraries not found: {', '.join(missing)}")
    # What the image ships: libpq and OpenSSL linked in (scripts/libpq-static), position-independent
    # (ASLR) with packed relative relocations (Package.swift's linker settings).
    dynamic_pq = [l.split()[0] for l in ldd.stdout.splitlines() if re.match(r"\s*lib(pq|ssl|crypto)\.so", l)]
    require(not dynamic_pq, f"links {', '.join(dynamic_pq)} dynamically: build with scripts/libpq-static's "
                            "directory on PKG_CONFIG_PATH, as scripts/run, test and bench do")
    require("Type:                              DYN" in header.stdout, f"{binary} is not position-independent")
    dynamic = run(["readelf", "-d", binary]).stdout
    require("(RELR)" in dynamic, f"{binary} has no packed relative relocations (DT_RELR): link with lld -z pack-relative-relocs")
    return f"no libswift*.so, libpq, libssl or libcrypto .so; PIE with DT_RELR; NEEDED {', '.join(needed_libraries(binary))}"


def needed_libraries(binary):
    out = run(["readelf", "-d", binary]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def ldd_paths(binary):
    """{soname: resolved path} of the whole closure ldd loads."""
    paths = {}
    for line in run(["ldd", binary]).stdout.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line)
        if m:
            paths[m.group(1)] = m.group(2)
        else:
            m = re.match(r"\s*(/\S+)\s+\(", line)         # the dynamic loader itself
            if m:
                paths[os.path.basename(m.group(1))] = m.group(1)
    return paths


def owning_package(path):
    """The Debian package that ships a library, trying the merged-/usr spellings of its path."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib"):
            candidates.append("/usr" + p)
    for p in candidates:
        result = run(["dpkg", "-S", p])
        if result.returncode == 0:
            return result.stdout.split(":")[0].strip()
    return None


def installed_packages():
    """{name: {"priority", "essential", "depends": [[alternatives]], "provides": [...]}} from dpkg."""
    fmt = "${Package}\t${Status}\t${Priority}\t${Essential}\t${Pre-Depends}\t${Depends}\t${Provides}\n"
    packages = {}
    for line in run(["dpkg-query", "-W", "-f", fmt]).stdout.splitlines():
        name, status, priority, essential, pre, deps, provides = (line.split("\t") + [""] * 7)[:7]
        if not status.endswith(" installed"):
            continue
        groups = []
        for group in filter(None, (g.strip() for g in (pre + "," + deps).split(","))):
            groups.append([re.sub(r"[:\s(].*", "", alt.strip()) for alt in group.split("|")])
        packages[name] = {"priority": priority, "essential": essential == "yes", "depends": groups,
                          "provides": [re.sub(r"[:\s(].*", "", p.strip()) for p in provides.split(",") if p.strip()]}
    return packages


def closure(seeds, packages):
    providers = {}
    for name, info in packages.items():
        for virtual in info["provides"]:
            providers.setdefault(virtual, name)
    seen, todo = set(), list(seeds)
    while todo:
        name = todo.pop()
        name = name if name in packages else providers.get(name, name)
        if name in seen or name not in packages:
            continue
        seen.add(name)
        for alternatives in packages[name]["depends"]:
            chosen = next((a for a in alternatives if a in packages or a in providers), None)
            if chosen:
                todo.append(chosen)
    return seen


def ships_shared_library(package):
    files = run(["dpkg", "-L", package]).stdout.splitlines()
    return any(re.search(r"/lib[^/]*/(.*/)?[^/]+\.so(\.\d+)*$", f) for f in files)


@check("runtime packages cover the binary's libraries")
def check_packages(binary, dockerfile):
    require(os.path.isfile(binary) and needed_libraries(binary), f"{binary} is missing or not a dynamically linked ELF executable")
    require(dockerfile.runtime["from"].startswith("debian:bookworm-slim"),
            f"the runtime stage is {dockerfile.runtime['from']}, not debian:bookworm-slim")
    # The runtime stage may install nothing: then bookworm-slim alone must cover the binary.
    runtime = dockerfile.apt_packages()
    packages = installed_packages()
    # debian:bookworm-slim is debootstrap's minbase variant: the Priority: required packages, apt,
    # and what they depend on. This machine is bookworm too, so its dpkg database knows them all.
    os_release = open("/etc/os-release").read() if os.path.exists("/etc/os-release") else ""
    require('VERSION_CODENAME=bookworm' in os_release, "this check models debian:bookworm-slim with this machine's dpkg database: run it on Debian 12")
    base_seeds = [n for n, i in packages.items() if i["priority"] == "required" or i["essential"]] + ["apt"]
    base = closure(base_seeds, packages)
    not_here = [p for p in runtime if p not in packages]
    require(not not_here, f"not installed on this machine, so their dependencies are unknown: {' '.join(not_here)}")
    with_deps = closure(runtime, packages)
    problems = []
    needed = needed_libraries(binary)
    paths = ldd_paths(binary)
    direct_packages = {}
    for soname in needed:
        path = paths.get(soname)
        package = owning_package(path) if path else None
        if not package:
            problems.append(f"{soname}: no Debian package ships it")
            continue
        direct_packages[soname] = package
        if package not in runtime and package not in base:
            problems.append(f"{soname} ({package}) is neither installed by the runtime stage nor in bookworm-slim")
    for soname, path in paths.items():
        if soname in needed:
            continue
        package = owning_package(path)
        if package and package not in with_deps and package not in base:
            problems.append(f"{soname} ({package}, loaded indirectly) comes with none of: {' '.join(runtime)}")
    data_only = []
    for package in runtime:
        if package in base:
            problems.append(f"{package} is already in debian:bookworm-slim")
        elif ships_shared_library(package):
            if package not in direct_packages.values():
                problems.append(f"{package} ships libraries the binary does not load directly (apt pulls dependencies by itself)")
        else:
            data_only.append(package)
    require(not problems, "; ".join(problems))
    detail = ", ".join(f"{s} ← {p}" for s, p in direct_packages.items())
    pulled = sorted(with_deps - base - set(runtime))
    return f"{detail}; {' '.join(data_only) or 'nothing'} ships no library (trust store); apt adds {' '.join(pulled)}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return None, b""


def service_user(dockerfile):
    """(uid, gid, description) of the non-root user to run as: todo-api-ci when this runs as root
    (created if missing, with the image's uid when that is free), else whoever runs this."""
    user = dockerfile.last("USER")
    require(user, "the runtime stage has no USER")
    image_uid = user.split(":")[0]
    require(image_uid not in ("0", "root"), f"USER {user} is root")
    if os.geteuid() != 0:
        return os.getuid(), os.getgid(), f"uid {os.getuid()} (not root already)"
    try:
        entry = pwd.getpwnam(CI_USER)
    except KeyError:
        argv = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                "--shell", "/usr/sbin/nologin"]
        if image_uid.isdigit():
            try:
                pwd.getpwuid(int(image_uid))
            except KeyError:
                argv += ["--uid", image_uid]
        created = run(argv + [CI_USER])
        require(created.returncode == 0, f"cannot create user {CI_USER}: {created.stderr.strip()}")
        entry = pwd.getpwnam(CI_USER)
    return entry.pw_uid, entry.pw_gid, f"{CI_USER} (uid {entry.pw_uid})"


def stage_image(dockerfile, binary, root):
    """Does the runtime stage's COPY/ADD/WORKDIR into `root`: the image's filesystem, minus Debian."""
    notes = []
    for options, sources, destination in dockerfile.copies():
        if options["instruction"] == "ADD" and all(re.match(r"https?://", s) for s in sources):
            notes.append(f"ADD {sources[0].rsplit('/', 1)[-1]} not fetched")
            continue
        if "from" in options and len(sources) == 1 and sources[0].endswith((".pem", ".crt")):
            # CA bundles from the build stage: Debian's roots are this machine's too; the RDS
            # bundle is fetched from the internet (scripts/image-test stands in for it).
            if os.path.isfile(sources[0]):
                os.makedirs(os.path.dirname(root + destination), exist_ok=True)
                shutil.copy2(sources[0], root + destination)
            else:
                notes.append(f"{os.path.basename(sources[0])} (fetched by the build stage) not fetched")
            continue
        if "from" in options:
            require(len(sources) == 1 and os.path.basename(sources[0]) == "todo-api",
                    f"COPY --from={options['from']} {' '.join(sources)}: only the binary and the CA bundle are expected from the build stage")
            sources = [binary]
        else:
            sources = [os.path.join(ROOT, s) for s in sources]
        target = root + destination
        for source in sources:
            require(os.path.exists(source), f"COPY source {source} does not exist")
            if os.path.isdir(source):
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif destination.endswith("/"):
                os.makedirs(target, exist_ok=True)
                shutil.copy2(source, os.path.join(target, os.path.basename(source)))
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(source, target)
    workdir = dockerfile.last("WORKDIR") or "/"
    os.makedirs(root + workdir, exist_ok=True)
    for directory, dirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for file in files:
            path = os.path.join(directory, file)
            os.chmod(path, 0o755 if os.access(path, os.X_OK) else 0o644)
    return root + workdir, notes


@check("serves as a non-root user from the image's files")
def check_serve(binary, dockerfile, database_url, state):
    """Starts the service as the image would and probes it; leaves it running for the next checks."""
    require(os.path.isfile(binary), f"{binary} is missing")
    require(database_url, "CONTAINER_CHECK_DATABASE_URL is not set (a PostgreSQL URL the service may migrate)")
    uid, gid, who = service_user(dockerfile)
    root = tempfile.mkdtemp(prefix="todo-api-container-check.")
    state["root"] = root
    os.chmod(root, 0o755)
    workdir, notes = stage_image(dockerfile, binary, root)
    entrypoint = Dockerfile.exec_form(dockerfile.last("ENTRYPOINT"))
    cmd = Dockerfile.exec_form(dockerfile.last("CMD"))
    image_binary = root + entrypoint[0]
    require(os.path.isfile(image_binary), f"ENTRYPOINT {entrypoint[0]} is not where COPY put the binary")
    environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}
    for key, value in dockerfile.env().items():
        environment[key] = root + value if value.startswith("/") and os.path.exists(root + value) else value
    for key in ("MIGRATIONS_DIR", "OPENAPI_FILE"):
        if key in environment:
            require(os.path.exists(environment[key]), f"ENV {key}={dockerfile.env()[key]} names nothing the image contains")
    environment["DATABASE_URL"] = database_url
    port, metrics = free_port(), free_port()
    while metrics == port:
        metrics = free_port()
    state.update(uid=uid, gid=gid, environment=environment, workdir=workdir, image_binary=image_binary, port=port)
    credentials = {"user": uid, "group": gid, "extra_groups": []} if os.geteuid() == 0 else {}
    argv = entrypoint[1:] + cmd + ["--migrate", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics)]
    process = subprocess.Popen([image_binary] + argv, cwd=workdir, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, **credentials)
    state["process"] = process
    stdout, stderr = [], []
    readers = [threading.Thread(target=lambda s=s, b=b: b.extend(s), daemon=True)
               for s, b in ((process.stdout, stdout), (process.stderr, stderr))]
    for reader in readers:
        reader.start()
    state["log_lines"] = stdout
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if http_get(f"http://127.0.0.1:{port}/health", timeout=1)[0] == 200:
            break
        time.sleep(0.1)
    tail = lambda: " | ".join(l.strip() for l in (stderr + stdout)[-3:])
    require(process.poll() is None, f"exited with {process.returncode} before serving: {tail()}")
    require(http_get(f"http://127.0.0.1:{port}/health")[0] == 200, f"no 200 from /health within 30 s: {tail()}")
    probes = {
        "/health/ready": http_get(f"http://127.0.0.1:{port}/health/ready")[0],
        "/todos": http_get(f"http://127.0.0.1:{port}/todos?limit=1")[0],       # the migrated tables
        "/openapi.yaml": http_get(f"http://127.0.0.1:{port}/openapi.yaml")[0],  # OPENAPI_FILE
        "metrics port /metrics": http_get(f"http://127.0.0.1:{metrics}/metrics")[0],
    }
    bad = {path: status for path, status in probes.items() if status != 200}
    require(not bad, f"answers {bad} (expected 200)")
    state["running"] = True
    state["tail"] = tail
    state["readers"] = readers
    extra = f"; {', '.join(notes)}" if notes else ""
    return (f"as {who}, {' '.join(cmd)} --migrate in a copy of the runtime stage's files: /health, /health/ready, "
            f"/todos (migrated), /openapi.yaml on :{port} and /metrics on :{metrics} answer 200{extra}")


@check("SIGTERM: drains and exits 0")
def check_stop(state):
    require(state.get("running"), "the service did not start (see above)")
    process = state["process"]
    require(process.poll() is None, f"the service exited by itself with {process.returncode}: {state['tail']()}")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    drain = parse_duration(state["environment"].get("DRAIN_TIMEOUT", "25s"))
    try:
        code = process.wait(timeout=drain + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        raise CheckFailed(f"still running {drain + 5:.0f} s after SIGTERM")
    for reader in state["readers"]:
        reader.join(timeout=2)
    require(code == 0, f"exit {code} after SIGTERM (expected 0): {state['tail']()}")
    stopped = any('"stopped"' in line for line in state["log_lines"])
    require(stopped, "no `stopped` log line after SIGTERM")
    return f"exit 0 {time.monotonic() - started:.1f} s after SIGTERM (DRAIN_TIMEOUT {drain:.0f} s), `stopped` logged"


def run_as(state, argv, timeout=15, environment=None):
    credentials = {"user": state["uid"], "group": state["gid"], "extra_groups": []} if os.geteuid() == 0 else {}
    return subprocess.run(argv, cwd=state["workdir"], env=environment or state["environment"], capture_output=True,
                          text=True, timeout=timeout, **credentials)


@check("healthcheck subcommand (the HEALTHCHECK command)")
def check_healthcheck(dockerfile, state):
    require(state.get("running"), "the service did not start (see above)")
    argv, _ = dockerfile.healthcheck()
    command = [state["root"] + argv[0]] + argv[1:]
    up = run_as(state, command + ["--url", f"http://127.0.0.1:{state['port']}/health"])
    up_lines = (up.stdout + up.stderr).strip().splitlines()
    require(up.returncode == 0, f"exit {up.returncode} against the running service: {' | '.join(up_lines)}")
    require(len(up_lines) == 1, f"{len(up_lines)} lines of output against the running service (expected 1): {up_lines}")
    closed = free_port()
    down = run_as(state, command + ["--url", f"http://127.0.0.1:{closed}/health"])
    down_lines = (down.stdout + down.stderr).strip().splitlines()
    require(down.returncode == 1, f"exit {down.returncode} against a closed port (expected 1): {' | '.join(down_lines)}")
    require(len(down_lines) == 1, f"{len(down_lines)} lines of output against a closed port (expected 1): {down_lines}")
    return f"{' '.join(argv)} --url …:{state['port']}/health → 0 \"{up_lines[0]}\"; closed port → 1 \"{down_lines[0]}\""


@check("log lines route as Fluent Bit will route them")
def check_log_routing(state):
    require(state.get("running"), "the service did not start (see above)")
    regex, keep = routing_regex(routing_text())
    require(keep == "true", "the rewrite_tag rule must keep the original record (it still goes to S3)")
    environment = dict(state["environment"])
    environment["DATABASE_URL"] = f"postgres://todo:x@127.0.0.1:{free_port()}/todo?connect_timeout=2"
    failed = run_as(state, [state["image_binary"], "migrate"], timeout=30, environment=environment)
    require(failed.returncode == 1, f"`migrate` against a closed port exited {failed.returncode} (expected 1)")
    lines = [l for l in state.get("log_lines", []) + failed.stdout.splitlines() if l.strip()]
    levels, wrong = {}, []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            raise CheckFailed(f"a stdout line is not JSON (FireLens and the metric filter need JSON): {line[:120]}")
        level = record.get("level")
        require(isinstance(level, str) and level == level.upper(), f"no upper-case top-level `level`: {line[:120]}")
        levels[level] = levels.get(level, 0) + 1
        if bool(regex.search(line)) != (level in ("ERROR", "CRITICAL", "FATAL")):
            wrong.append(line[:120])
    require(not wrong, f"the rule routes these wrongly: {wrong}")
    require(levels.get("ERROR", 0) >= 1 and sum(levels.values()) > levels.get("ERROR", 0),
            f"need both error and other lines to judge the rule, saw {levels}")
    forged = json.dumps({"timestamp": "t", "level": "INFO", "message": '"level":"ERROR"'}, separators=(",", ":"))
    require(not regex.search(forged), "a message containing \"level\":\"ERROR\" would be routed as an error")
    return f"{len(lines)} real lines ({', '.join(f'{k} {v}' for k, v in sorted(levels.items()))}): exactly the ERROR ones match {regex.pattern}"


@check("cfn-lint deploy/cloudformation.yaml")
def check_cfn_lint(cfn_lint):
    result = run([cfn_lint, "--format", "parseable", CFN])
    version = run([cfn_lint, "--version"]).stdout.strip()
    findings = (result.stdout + result.stderr).strip().splitlines()
    require(result.returncode == 0, f"exit {result.returncode}: {' | '.join(findings[:5])}")
    return f"{version}: no errors or warnings"


@check("deploy/task-definition.json is a valid task definition")
def check_taskdef_schema(cfn_lint):
    """cfn-lint knows the ECS schema: lint the JSON as the properties of an AWS::ECS::TaskDefinition."""
    taskdef = json.load(open(TASKDEF, encoding="utf-8"))
    text = json.dumps(taskdef)
    for placeholder, example in (("<ACCOUNT_ID>", "123456789012"), ("<REGION>", "us-east-1"), ("<TAG>", "1"),
                                 ("<DB_SECRET_NAME>", "todo-api-db-AbCdEf"), ("<LOG_BUCKET>", "example-logs"),
                                 ("<USER_POOL_ID>", "us-east-1_Example"), ("<APP_CLIENT_ID>", "1example23456789example")):
        text = text.replace(placeholder, example)
    left = re.findall(r"<[A-Z_]+>", text)
    require(not left, f"undocumented placeholders: {sorted(set(left))}")
    template = {"AWSTemplateFormatVersion": "2010-09-09",
                "Resources": {"TaskDefinition": {"Type": "AWS::ECS::TaskDefinition", "Properties": cfn_shape(json.loads(text))}}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(template, file)
    try:
        result = run([cfn_lint, "--format", "parseable", file.name])
    finally:
        os.unlink(file.name)
    findings = (result.stdout + result.stderr).strip().splitlines()
    require(result.returncode == 0, f"cfn-lint on it as AWS::ECS::TaskDefinition: {' | '.join(findings[:5])}")
    return "the ECS schema (cfn-lint on it as AWS::ECS::TaskDefinition properties) accepts it"


@check("task-definition.json and cloudformation.yaml define the same task")
def check_taskdefs_agree(template):
    json_def = json.load(open(TASKDEF, encoding="utf-8"))
    resources = template.resources("AWS::ECS::TaskDefinition")
    require(len(resources) == 1, f"expected one AWS::ECS::TaskDefinition, found {len(resources)}")
    raw = next(iter(resources.values()))["Properties"]
    cfn_def = api_shape(template.resolve(raw))
    problems = []
    for key in ("networkMode", "requiresCompatibilities", "cpu", "memory", "runtimePlatform"):
        if not same(json_def.get(key), cfn_def.get(key)):
            problems.append(f"{key}: {json_def.get(key)} vs {cfn_def.get(key)}")
    require(json_def["networkMode"] == "awsvpc" and json_def["requiresCompatibilities"] == ["FARGATE"],
            "not an awsvpc Fargate task definition")
    json_containers, cfn_containers = by_name(json_def["containerDefinitions"]), by_name(cfn_def["containerDefinitions"])
    require(set(json_containers) == set(cfn_containers) == {APP, ROUTER},
            f"containers {sorted(json_containers)} vs {sorted(cfn_containers)} (expected {APP}, {ROUTER})")
    optional = {c["Name"]: Template.optional_names(c.get("Environment", [])) for c in raw["ContainerDefinitions"]}
    for name in (APP, ROUTER):
        a, b = json_containers[name], cfn_containers[name]
        for key in sorted(set(a) | set(b)):
            if key in ("environment", "secrets"):
                ea, eb = env_of(a, key), env_of(b, key)
                # The JSON is one deployment of the template: every variable the template always
                # sets, plus any it sets in some mode (the JSON's example: AUTH=jwt with Cognito).
                names_b = set(eb) - optional.get(name, set())
                if not names_b <= set(ea) <= set(eb):
                    problems.append(f"{name}.{key} names: {sorted(ea)} vs {sorted(names_b)} (+ optional {sorted(set(eb) - names_b)})")
                problems += [f"{name}.{key} {k}: {str(ea[k])[:60]!r} vs {str(eb[k])[:60]!r}{' (they differ further on)' if len(str(ea[k])) > 60 else ''}"
                             for k in ea if k in names_b and not same(ea[k], eb[k])]
            elif not same(a.get(key), b.get(key)):
                problems.append(f"{name}.{key}: {json.dumps(a.get(key))[:80]} vs {json.dumps(b.get(key))[:80]}")
    require(not problems, "; ".join(problems))
    app = json_containers[APP]
    return (f"containers {APP} + {ROUTER}; port {[p['containerPort'] for p in app['portMappings']]}, health check "
            f"{' '.join(app['healthCheck']['command'][1:])}, {len(app['environment'])} env + {len(app['secrets'])} secret, stopTimeout {app['stopTimeout']}")


@check("log routing configuration (S3 for all, CloudWatch for errors)")
def check_routing_config(template):
    json_def = by_name(json.load(open(TASKDEF, encoding="utf-8"))["containerDefinitions"])
    cfn_def = by_name(api_shape(template.resolve(
        next(iter(template.resources("AWS::ECS::TaskDefinition").values()))["Properties"]))["containerDefinitions"])
    expected = routing_text()
    for source, containers in (("task-definition.json", json_def), ("cloudformation.yaml", cfn_def)):
        router, app = containers[ROUTER], containers[APP]
        inline = env_of(router).get("FLUENT_BIT_ROUTING_CONF")
        require(inline is not None and inline.strip() + "\n" == expected,
                f"{source}: FLUENT_BIT_ROUTING_CONF differs from deploy/fluent-bit-routing.conf")
        options = router["firelensConfiguration"]["options"]
        target = options.get("config-file-value")
        require(router["firelensConfiguration"]["type"] == "fluentbit" and options.get("config-file-type") == "file",
                f"{source}: the log router is not FireLens Fluent Bit with a config file")
        require(f"> {target}" in " ".join(router.get("command", [])), f"{source}: the log router's command does not write {target}")
        require(router["image"].startswith("public.ecr.aws/aws-observability/aws-for-fluent-bit:"), f"{source}: log router image {router['image']}")
        log = app["logConfiguration"]
        require(log["logDriver"] == "awsfirelens", f"{source}: the app's log driver is {log['logDriver']}")
        out = log.get("options", {})
        require(out.get("Name") == "s3" and out.get("compression") == "gzip" and "%H" in out.get("s3_key_format", ""),
                f"{source}: the app's FireLens output is not S3, gzip, partitioned by hour: {out}")
        group = env_of(router).get("ERROR_LOG_GROUP")
        require(group == "/ecs/backend/errors", f"{source}: ERROR_LOG_GROUP is {group}")
    for key in ("Name cloudwatch_logs", "Match errors.*", "log_group_name ${ERROR_LOG_GROUP}", "log_key log", "Match todo-api-firelens*"):
        require(re.search(r"\s+".join(map(re.escape, key.split())), expected), f"routing config lacks `{key}`")
    regex, _ = routing_regex(expected)
    require(re.escape(f"{APP}-firelens") in re.escape(expected), "the filter does not match the app container's tag")
    return f"app → S3 (gzip, hourly keys); {regex.pattern} → CloudWatch Logs /ecs/backend/errors; identical in all three files"


@check("docker-compose.yml")
def check_compose(dockerfile, taskdef, check_jsonschema):
    schema = run([check_jsonschema, "--builtin-schema", "vendor.compose-spec", COMPOSE])
    require(schema.returncode == 0, f"not a valid Compose file: {(schema.stdout + schema.stderr).strip()}")
    compose = yaml.safe_load(open(COMPOSE, encoding="utf-8"))
    services = compose["services"]
    postgres = next((s for s in services.values() if str(s.get("image", "")).startswith("postgres:15")), None)
    require(postgres, "no postgres:15 service")
    require("pg_isready" in json.dumps(postgres.get("healthcheck", {})), "postgres has no pg_isready healthcheck")
    volume = next((v.split(":")[0] for v in postgres.get("volumes", []) if isinstance(v, str)), None)
    require(volume in (compose.get("volumes") or {}), "postgres data is not on a named volume")
    api = services.get("api")
    require(api and api.get("build") in (".", {"context": "."}), "no `api` service built from the Dockerfile")
    published = []
    for port in api.get("ports", []):
        container = port.get("target") if isinstance(port, dict) else str(port).split(":")[-1].split("/")[0]
        published.append(int(container))
    exposed = [int(p.split("/")[0]) for args in dockerfile.all("EXPOSE") for p in args.split()]
    require(exposed and exposed[0] in published, f"api publishes {published}, the Dockerfile exposes {exposed}")
    argv, _ = dockerfile.healthcheck()
    test = api.get("healthcheck", {}).get("test")
    require(test == ["CMD"] + argv, f"api healthcheck {test} is not the Dockerfile's {['CMD'] + argv}")
    depends = api.get("depends_on", {})
    db_name = next(n for n, s in services.items() if s is postgres)
    require(depends.get(db_name, {}).get("condition") == "service_healthy", f"api does not wait for {db_name} to be healthy")
    migrations = [n for n, d in depends.items() if d.get("condition") == "service_completed_successfully"
                  and services[n].get("command") == ["migrate"]]
    migrates_itself = "--migrate" in (api.get("command") or []) or str(api.get("environment", {}).get("MIGRATE_ON_START")) == "true"
    require(migrations or migrates_itself, "migrations are applied by neither a one-shot migrate service nor serve --migrate")
    environment = api.get("environment", {})
    require(isinstance(environment, dict), "write api.environment as a mapping")
    app = by_name(taskdef["containerDefinitions"])[APP]
    production = set(env_of(app)) | set(env_of(app, "secrets"))
    require("DB_SECRET" in environment and "DB_SECRET" in production, "the database is not configured through DB_SECRET as on ECS")
    json.loads(environment["DB_SECRET"])
    unknown = sorted(n for n in set(environment) | production if n not in known_settings() and not re.fullmatch(r"PG[A-Z_]+", n))
    require(not unknown, f"variables the binary does not read: {unknown}")
    overlap = sorted(set(environment) & production)
    grace = parse_duration(api.get("stop_grace_period", "10s"))
    drain = parse_duration(environment.get("DRAIN_TIMEOUT", "25s"))
    require(grace > drain, f"stop_grace_period {grace:.0f} s does not cover DRAIN_TIMEOUT {drain:.0f} s")
    how = f"one-shot `{migrations[0]}` service" if migrations else "serve --migrate"
    return f"valid; port {exposed[0]}, same health check, migrations by {how}, DB_SECRET; shared variables {', '.join(overlap)}"


@check("Dockerfile agrees with the deployment files")
def check_dockerfile(dockerfile, taskdef, template):
    build = dockerfile.stage("build")
    require(re.fullmatch(r"swift:6\.\d+(\.\d+)?-bookworm", build["from"]), f"build stage FROM {build['from']}")
    require({"libssl-dev", "dpkg-dev", "make", "pkg-config"} <= set(dockerfile.apt_packages(build)),
            "the build stage lacks libssl-dev, or what scripts/libpq-static needs (dpkg-dev, make, pkg-config)")
    steps = [(k, a) for k, a in build["instructions"]]
    index = lambda predicate: next((i for i, step in enumerate(steps) if predicate(*step)), None)
    manifest = index(lambda k, a: k == "COPY" and "Package." in a and "Sources" not in a)
    resolve = index(lambda k, a: k == "RUN" and "swift package resolve" in a)
    sources = index(lambda k, a: k == "COPY" and "Sources" in a)
    libpq = index(lambda k, a: k == "RUN" and 'pc="$(scripts/libpq-static)"' in a and "/src/.build-deps/pkgconfig-dir" in a)
    compile_ = index(lambda k, a: k == "RUN" and 'pc="$(cat /src/.build-deps/pkgconfig-dir)"' in a
                     and 'PKG_CONFIG_PATH="$pc" swift build -c release --static-swift-stdlib --product todo-api' in a)
    require(None not in (manifest, resolve, libpq, sources, compile_) and manifest < resolve < sources < compile_ and libpq < compile_,
            "the build stage must copy Package.*, resolve, build libpq (scripts/libpq-static), then copy Sources, "
            "then build --static-swift-stdlib with the static libpq on PKG_CONFIG_PATH (as scripts/run, test and bench do)")
    exposed = [int(p.split("/")[0]) for args in dockerfile.all("EXPOSE") for p in args.split()]
    app = by_name(taskdef["containerDefinitions"])[APP]
    ports = [p["containerPort"] for p in app["portMappings"]]
    target_groups = template.resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    tg_ports = [int(t["Properties"]["Port"]) for t in target_groups.values()]
    require(exposed == [8000] and 8000 in ports and tg_ports == [8000], f"EXPOSE {exposed}, task ports {ports}, target group {tg_ports}")
    argv, options = dockerfile.healthcheck()
    entrypoint = Dockerfile.exec_form(dockerfile.last("ENTRYPOINT"))
    cmd = Dockerfile.exec_form(dockerfile.last("CMD"))
    require(argv[0] == entrypoint[0], f"HEALTHCHECK runs {argv[0]}, ENTRYPOINT is {entrypoint[0]}")
    require(argv[1:2] == ["healthcheck"], f"HEALTHCHECK is not the healthcheck subcommand: {argv}")
    health = app["healthCheck"]
    require(health["command"] == ["CMD"] + argv, f"ECS health check {health['command']} vs HEALTHCHECK {argv}")
    for docker_key, ecs_key in (("interval", "interval"), ("timeout", "timeout"), ("start-period", "startPeriod"), ("retries", "retries")):
        require(parse_duration(options.get(docker_key, "0")) == float(health.get(ecs_key, 0)),
                f"HEALTHCHECK --{docker_key}={options.get(docker_key)} vs ECS {ecs_key} {health.get(ecs_key)}")
    require(app.get("command", cmd) == cmd == ["serve"], f"CMD {cmd}, task command {app.get('command')}")
    require(dockerfile.last("STOPSIGNAL") == "SIGTERM", f"STOPSIGNAL {dockerfile.last('STOPSIGNAL')}")
    user = dockerfile.last("USER")
    require(re.fullmatch(r"[1-9]\d*(:\d+)?", user or ""), f"USER {user} is not a fixed non-root uid")
    copied = [d for o, s, d in dockerfile.copies() if "from" in o and not s[0].endswith((".pem", ".crt"))]
    require(copied == [entrypoint[0]], f"the binary is copied to {copied}, ENTRYPOINT runs {entrypoint[0]}")
    added = [d for o, s, d in dockerfile.copies() if o["instruction"] == "ADD" or ("from" in o and s[0].endswith(".pem"))]
    root_cert = env_of(app).get("PGSSLROOTCERT")
    require(root_cert is None or root_cert in added, f"PGSSLROOTCERT {root_cert} is not a file the image adds ({added})")
    return (f"EXPOSE 8000 = task and target group port; HEALTHCHECK {' '.join(argv)} every {options['interval']}, "
            f"timeout {options['timeout']} = ECS; ENTRYPOINT {entrypoint[0]} CMD {' '.join(cmd)}; USER {user}; STOPSIGNAL SIGTERM")


@check("timeouts fit together")
def check_timeouts(taskdef, template, dockerfile):
    app = by_name(taskdef["containerDefinitions"])[APP]
    environment = env_of(app)
    drain = parse_duration(environment.get("DRAIN_TIMEOUT", "25s"))
    idle = parse_duration(environment.get("IDLE_TIMEOUT", "75s"))
    stop = float(app.get("stopTimeout", 30))
    require(drain < stop, f"DRAIN_TIMEOUT {drain:.0f} s is not under stopTimeout {stop:.0f} s (ECS would SIGKILL mid-drain)")
    require(idle > ALB_IDLE_TIMEOUT, f"IDLE_TIMEOUT {idle:.0f} s is not above the ALB's {ALB_IDLE_TIMEOUT} s idle timeout (502s)")
    tg = next(iter(template.resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()))["Properties"]
    attributes = {a["Key"]: a["Value"] for a in tg.get("TargetGroupAttributes", [])}
    deregistration = float(attributes.get("deregistration_delay.timeout_seconds", 300))
    require(deregistration >= drain, f"deregistration delay {deregistration:.0f} s is shorter than the {drain:.0f} s drain")
    require(tg["HealthCheckPath"] == "/health" and int(tg["HealthCheckIntervalSeconds"]) == 30 and int(tg["HealthCheckTimeoutSeconds"]) == 5,
            f"target group health check {tg['HealthCheckPath']} every {tg['HealthCheckIntervalSeconds']} s, timeout {tg['HealthCheckTimeoutSeconds']} s")
    service = next(iter(template.resources("AWS::ECS::Service").values()))["Properties"]
    grace = float(service.get("HealthCheckGracePeriodSeconds", 0))
    needed = int(tg["HealthCheckIntervalSeconds"]) * int(tg.get("HealthyThresholdCount", 5))
    require(grace >= needed, f"health check grace period {grace:.0f} s < {needed} s for the ALB to see a new task healthy")
    argv, options = dockerfile.healthcheck()
    given = [a.split("=", 1)[1] for a in argv if a.startswith("--timeout=")]
    budget = argv[argv.index("--timeout") + 1] if "--timeout" in argv else given[-1] if given else healthcheck_default_timeout()
    require(parse_duration(budget) < parse_duration(options["timeout"]),
            f"the healthcheck's own {budget} is not inside the HEALTHCHECK timeout {options['timeout']}")
    return (f"drain {drain:.0f} s < stopTimeout {stop:.0f} s; deregistration delay {deregistration:.0f} s ≥ drain; "
            f"idle {idle:.0f} s > ALB {ALB_IDLE_TIMEOUT} s; health checks 30 s/5 s, healthcheck's own budget {budget}; "
            f"grace period {grace:.0f} s ≥ {needed} s")


def healthcheck_default_timeout():
    path = os.path.join(ROOT, "Sources", "todo-api", "HealthcheckCommand.swift")
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    found = re.search(r'options\["timeout"\] \?\? "([^"]+)"', text)
    require(found, f"cannot find the healthcheck's default timeout (options[\"timeout\"] ?? \"…\") in {path}")
    return found.group(1)


def dockerignore_excludes(patterns, path):
    """Docker's rule: the last pattern matching the path or one of its parent directories wins."""
    excluded = False
    parts = path.split("/")
    for negate, pattern in patterns:
        regex = "^" + re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
        if any(re.match(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


@check(".dockerignore")
def check_dockerignore(dockerfile):
    patterns = []
    for line in open(DOCKERIGNORE, encoding="utf-8").read().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            patterns.append((negate, os.path.normpath(line.lstrip("!")).lstrip("/")))
    needed = []
    for stage in dockerfile.stages:
        for options, sources, _ in dockerfile.copies(stage):
            if "from" in options or options["instruction"] == "ADD" and all(re.match(r"https?://", s) for s in sources):
                continue
            for source in sources:
                matches = [m for m in sorted(fnmatch.filter(os.listdir(ROOT), source.rstrip("/")))] if "*" in source else [source.rstrip("/")]
                for match in matches:
                    full = os.path.join(ROOT, match)
                    if os.path.isdir(full):
                        for directory, dirs, files in os.walk(full):
                            dirs[:] = [d for d in dirs if not d.startswith(".build")]
                            needed += [os.path.relpath(os.path.join(directory, f), ROOT) for f in files]
                    elif os.path.exists(full):
                        needed.append(match)
    dropped = [p for p in needed if dockerignore_excludes(patterns, p)]
    require(not dropped, f"files the Dockerfile copies are excluded: {dropped[:5]}")
    kept = [p for p in (".build/release/todo-api", ".build-tools/x", ".git/HEAD", ".local/postgres/PG_VERSION",
                        "Sources/Net/.build/x") if not dockerignore_excludes(patterns, p)]
    require(not kept, f"would be sent to the build: {kept}")
    return f"the {len(needed)} files the Dockerfile copies are in the context; .build*, .git, .local are not"


@check("hadolint Dockerfile")
def check_hadolint(hadolint):
    version = run([hadolint, "--version"]).stdout.strip()
    result = run([hadolint, "--no-color", DOCKERFILE])
    findings = (result.stdout + result.stderr).strip().splitlines()
    require(result.returncode == 0, " | ".join(findings[:5]))
    return f"{version}: no findings"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("binary")
    parser.add_argument("--cfn-lint", required=True)
    parser.add_argument("--check-jsonschema", required=True)
    parser.add_argument("--hadolint", default="")
    parser.add_argument("--hadolint-skip-reason", default="")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    dockerfile = Dockerfile(DOCKERFILE)
    template = Template(CFN)
    taskdef = json.load(open(TASKDEF, encoding="utf-8"))
    state = {}

    check_static(binary)
    check_packages(binary, dockerfile)

    try:
        check_serve(binary, dockerfile, os.environ.get("CONTAINER_CHECK_DATABASE_URL"), state)
        check_healthcheck(dockerfile, state)
        check_log_routing(state)
        check_stop(state)
    finally:
        process = state.get("process")
        if process and process.poll() is None:
            process.kill()
            process.wait()
        if state.get("root"):
            shutil.rmtree(state["root"], ignore_errors=True)
    check_cfn_lint(args.cfn_lint)
    check_taskdef_schema(args.cfn_lint)
    check_taskdefs_agree(template)
    check_routing_config(template)
    check_compose(dockerfile, taskdef, args.check_jsonschema)
    check_dockerfile(dockerfile, taskdef, template)
    check_timeouts(taskdef, template, dockerfile)
    check_dockerignore(dockerfile)
    if args.hadolint:
        check_hadolint(args.hadolint)
    else:
        skip("hadolint Dockerfile", args.hadolint_skip_reason or "no hadolint")
    passed, failed = results.count(True), results.count(False)
    print(f"container-check: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
