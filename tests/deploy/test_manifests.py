"""deploy/: every command, flag, path, port and name the Kubernetes manifests and the
Dockerfile refer to exists (docs/deploy.md)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import warnings
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest

from umbau.cli import cli, hoist_global_options
from umbau.settings import parse_duration

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DURATION_FLAGS = {"--lock-wait": "lock_wait", "--lock-timeout": "lock_timeout",
                  "--statement-timeout": "statement_timeout"}


# -- the Dockerfile ---------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    out = []
    for line in logical:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


class Image:
    """What the Dockerfile builds: files copied to where, the last WORKDIR, the USER."""

    def __init__(self) -> None:
        self.args: dict[str, str] = {}
        self.copies: list[tuple[Path, PurePosixPath]] = []
        self.workdir = PurePosixPath("/")
        self.user = "root"
        self.env: dict[str, str] = {}
        self.froms: list[str] = []
        for word, rest in dockerfile_instructions():
            rest = self.expand(rest)
            if word == "ARG":
                name, _, default = rest.partition("=")
                self.args.setdefault(name, default)
            elif word == "FROM":
                self.froms.append(rest)
            elif word == "WORKDIR":
                self.workdir = self.workdir / rest
            elif word == "USER":
                self.user = rest
            elif word == "ENV":
                for pair in shlex.split(rest):
                    key, _, value = pair.partition("=")
                    self.env[key] = value
            elif word == "COPY":
                parts = [p for p in shlex.split(rest) if not p.startswith("--")]
                *sources, dest = parts
                target = self.workdir / dest
                for source in sources:
                    self.copies.append((ROOT / source, target))

    def expand(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)",
                      lambda m: self.args.get(m[1] or m[2], m[0]), text)

    def source_of(self, path: str) -> Path | None:
        """The file in the repository that ends up at ``path`` in the image, or None."""
        wanted = PurePosixPath(path)
        for source, dest in self.copies:
            if source.is_file() and (dest == wanted or (str(dest).endswith("/")
                                                        and dest / source.name == wanted)):
                return source
            if source.is_dir() and wanted.is_relative_to(dest):
                candidate = source / wanted.relative_to(dest)
                if candidate.exists():
                    return candidate
        return None


@pytest.fixture(scope="module")
def image() -> Image:
    return Image()


def test_every_copy_source_exists(image: Image) -> None:
    assert image.copies
    missing = [str(source.relative_to(ROOT)) for source, _ in image.copies
               if not source.exists()]
    assert not missing, f"COPY sources missing from the repository: {missing}"
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for source, _ in image.copies:
        top = source.relative_to(ROOT).parts[0]
        assert top not in ignored, f"{top} is COPYed but excluded by Dockerfile.dockerignore"


def test_image_pins_the_client_and_runs_as_non_root(image: Image) -> None:
    assert image.args["PG_MAJOR"].isdigit()
    assert image.env["UMBAU_PG_BIN"] == f"/usr/lib/postgresql/{image.args['PG_MAJOR']}/bin"
    assert image.user.split(":")[0] not in ("root", "0")
    assert str(image.workdir) == "/app"
    # the application folder holds umbau's settings and the Alembic project
    app = image.source_of("/app/umbau.toml")
    assert app is not None and image.source_of("/app/alembic.ini") is not None
    assert image.source_of("/app/migrations/env.py") is not None


# -- the manifests ----------------------------------------------------------------------

def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in documents():
        if doc["kind"] in ("Job", "Deployment"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in pod_specs():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{name}/{container['name']}", container


def check_umbau(argv: list[str]) -> None:
    """Parse ``umbau ARGS`` exactly as the CLI does, without running it: unknown
    commands, flags and choice values raise click's usage errors."""
    args = hoist_global_options(argv)
    known = {opt for p in cli.params for opt in p.opts}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = cli.make_context("umbau", list(args))
        group: click.Command = cli
        rest = [*ctx.protected_args, *ctx.args]
        while isinstance(group, click.Group):
            name, command, rest = group.resolve_command(ctx, rest)
            assert command is not None and name is not None
            known |= {opt for p in command.params for opt in [*p.opts, *p.secondary_opts]}
            ctx = command.make_context(name, rest, parent=ctx)
            group = command
            rest = [*ctx.protected_args, *ctx.args] if isinstance(command, click.Group) else []
    # commands that take unknown options as arguments (`upgrade -1`) would swallow a typo
    unknown = [a.split("=")[0] for a in argv if a.startswith("--")
               and a.split("=")[0] not in known]
    if unknown:
        raise click.UsageError(f"no such option(s): {', '.join(unknown)}")
    for flag, key in DURATION_FLAGS.items():
        if flag in argv:
            parse_duration(argv[argv.index(flag) + 1], key=key)


def check_command(argv: list[str], image: Image) -> None:
    if argv[0] == "umbau":
        check_umbau(argv[1:])
    elif argv[0] == "python":
        if argv[1] == "-m":
            assert image.source_of(f"/app/{argv[2].replace('.', '/')}.py") \
                or importlib.util.find_spec(argv[2]), f"no module {argv[2]}"
        else:
            source = image.source_of(argv[1])
            assert source is not None, f"{argv[1]} is not in the image"
            for flag in (a for a in argv[2:] if a.startswith("--")):
                assert f'"{flag}"' in source.read_text(), f"{argv[1]} has no {flag}"
    else:
        pytest.fail(f"unknown program {argv[0]}")


def test_every_command_parses(image: Image) -> None:
    seen = 0
    for where, container in containers():
        argv = [*container.get("command", []), *container.get("args", [])]
        check_command(argv, image)
        assert container.get("workingDir", str(image.workdir)) == str(image.workdir), where
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            if command:
                check_command(command, image)
        seen += 1
    assert seen >= 4


def test_a_bad_flag_would_be_found(image: Image) -> None:
    with pytest.raises(click.UsageError):
        check_umbau(["upgrade", "--phase", "middle"])
    with pytest.raises(click.UsageError):
        check_umbau(["upgrade", "--no-such-flag"])
    with pytest.raises(click.UsageError):
        check_umbau(["upgrayed"])
    with pytest.raises(AssertionError):
        check_command(["python", "/app/nowhere.py"], image)


def test_the_jobs_migrate_in_two_phases() -> None:
    phases = []
    for _, container in containers():
        argv = [*container.get("command", []), *container.get("args", [])]
        if argv[:2] == ["umbau", "upgrade"]:
            phases.append(argv[argv.index("--phase") + 1])
    assert "pre" in phases and "post" in phases


def test_probes_ports_secrets_and_volumes_match() -> None:
    docs = documents()
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    app_source = (DEPLOY / "app.py").read_text()
    for name, spec in pod_specs():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{name}: volume {mount['name']} undefined"
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], name
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if not http:
                    continue
                assert http["port"] in ports or http["port"] in ports.values(), name
                number = ports.get(http["port"], http["port"])
                args = container.get("args", [])
                assert str(number) == args[args.index("--port") + 1], name
                if http["path"] == "/health/ready":
                    assert "from umbau.readiness import wsgi_app" in app_source
                    if importlib.util.find_spec("umbau.readiness") is not None:
                        from umbau import readiness

                        assert readiness.PATH == "/health/ready"
                else:
                    assert f'"{http["path"]}"' in app_source, f"{name}: {http['path']}"
