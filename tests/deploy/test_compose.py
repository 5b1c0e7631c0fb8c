"""docker-compose.yml read as YAML (Docker cannot run here): what binds where, that no secret is written in it, that
every variable it uses is documented in .env.example, pinned images, healthchecks, declared volumes, and that each
command would start: its executable is installed, its options parse with the real CLI, and every file it names is in
the repo (through the image's copy of it or a bind mount)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT_SCRIPTS = set(PYPROJECT["project"]["scripts"])
#: the Dagster binaries the image gets from requirements.lock (dagster, dagster-webserver)
DAGSTER_BINARIES = {"dagster", "dagster-webserver", "dagster-daemon"}
VENV_BIN = Path(sys.executable).parent
#: keys whose value is a secret: it must come from .env, never be written here
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|DSN", re.IGNORECASE)
#: a compose interpolation (``$$`` is a literal dollar, left to the container's shell)
VAR_REF = re.compile(
    r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
#: a secret's whole value: a required reference, or an optional one whose default is empty
SECRET_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::\?[^}]*|:-)?\}$")
PATH_LIKE = re.compile(r"\.(ya?ml|py|json|sql|sh|toml)$")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _dockerfile_workdir() -> PurePosixPath:
    """The image's WORKDIR, which holds the whole repo (``COPY . .``)."""
    lines = (REPO / "Dockerfile").read_text().splitlines()
    workdir = [line.split(None, 1)[1].strip() for line in lines if line.startswith("WORKDIR ")]
    assert workdir, "Dockerfile has no WORKDIR"
    assert "COPY . ." in lines, "the image must hold a copy of the repo (COPY . .) in its WORKDIR"
    return PurePosixPath(workdir[-1])


def _mounts(service: dict[str, Any]) -> list[tuple[str, PurePosixPath, bool]]:
    """(source, target, is a bind mount) of each of the service's volumes, short or long syntax."""
    out = []
    for item in service.get("volumes") or []:
        if isinstance(item, dict):
            source, target = str(item.get("source", "")), str(item["target"])
            bind = item.get("type") == "bind"
        else:
            source, target = item.split(":")[:2]
            bind = source.startswith((".", "/"))
        out.append((source, PurePosixPath(target), bind))
    return out


def _on_host(service: dict[str, Any], path: str) -> Path | str | None:
    """Where a path the container sees comes from: a repo path (bind mount, or the image's copy of the repo when the
    image is built from it), the name of the volume it is on, or None when it is nowhere the compose file provides."""
    built = "build" in service
    workdir = _dockerfile_workdir()
    target = PurePosixPath(path) if path.startswith("/") else workdir / path
    # the deepest mount wins, as in the container
    for source, mount, bind in sorted(_mounts(service), key=lambda m: len(m[1].parts), reverse=True):
        if target == mount or mount in target.parents:
            if not bind:
                return source
            return (REPO / source).resolve() / target.relative_to(mount)
    if built and (target == workdir or workdir in target.parents):
        return REPO / target.relative_to(workdir)
    return None


def _commands(service: dict[str, Any]) -> list[list[str]]:
    """The service's entrypoint/command and its healthcheck command, in exec form."""
    out = []
    for key in ("entrypoint", "command"):
        if key in service:
            assert isinstance(service[key], list), f"{key} must be a list (exec form: no shell, no word splitting)"
            out.append([str(a) for a in service[key]])
    test = (service.get("healthcheck") or {}).get("test")
    if test:
        assert isinstance(test, list) and test[0] == "CMD", "healthchecks in exec form: ['CMD', ...]"
        out.append([str(a) for a in test[1:]])
    return out


def _file_args(argv: list[str]) -> Iterator[str]:
    """The arguments of a command that name files (``python -c CODE``'s code excluded)."""
    skip = False
    for arg in argv[1:]:
        if skip or "://" in arg or arg.startswith("-"):
            skip = arg == "-c"
            continue
        if PATH_LIKE.search(arg) or arg.startswith("/"):
            yield arg


def _click_command(script: str) -> click.Command:
    """The click command behind an installed console script (dagster's entry points are plain functions that call
    the module's ``cli``)."""
    (ep,) = entry_points(group="console_scripts", name=script)
    module = import_module(ep.module)
    found = getattr(module, ep.attr)
    if not isinstance(found, click.Command):
        found = getattr(module, "cli", None)
    assert isinstance(found, click.Command), f"{script}: no click command behind {ep.value}"
    return found


def _parse(script: str, argv: list[str]) -> click.Context:
    """Parse ``argv`` with the script's real CLI, down to the subcommand, without running anything: unknown options,
    missing values and files that do not exist fail here as they would at start."""
    ctx = _click_command(script).make_context(script, list(argv))
    while isinstance(ctx.command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        assert rest, f"{script}: no subcommand in {argv}"
        name, sub, remaining = ctx.command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, remaining, parent=ctx)
    return ctx


BUILT = sorted(name for name, service in SERVICES.items() if "build" in service)


# --- network --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_are_bound_to_loopback(name: str) -> None:
    service = SERVICES[name]
    assert service.get("network_mode") != "host", "host networking would bind every port on every interface"
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
        else:
            assert str(port).startswith("127.0.0.1:"), f"{name}: port {port!r} is not bound to 127.0.0.1"


def test_the_webserver_listens_on_all_interfaces_only_inside_its_container() -> None:
    # -h 0.0.0.0 is needed for Docker's port forwarding; it is safe because the published port is loopback-only
    web = SERVICES["dagster-webserver"]
    argv = web["command"]
    assert argv[argv.index("-h") + 1] == "0.0.0.0" and web["ports"] == ["127.0.0.1:3000:3000"]
    assert "ports" not in SERVICES["dagster-code-server"], "the code server's gRPC API launches runs: never publish it"


# --- secrets --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_secret_is_written_in_the_compose_file(name: str) -> None:
    for key, value in _environment(SERVICES[name]).items():
        if key.endswith("_DSN") and not re.search(r"password|\$", value, re.IGNORECASE):
            continue  # a DSN without credentials (libpq takes them from PGUSER/PGPASSWORD)
        if SECRETISH.search(key):
            assert SECRET_REF.match(value), f"{name}: {key} must be a ${{VAR:?...}} reference to .env, not {value!r}"
    for text in _strings(SERVICES[name]):
        # no URL with a password in it (a DSN like postgresql://user:password@host/db)
        assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), f"{name}: credentials in a URL: {text!r}"
        for ref in VAR_REF.finditer(text):
            var, rest = ref.group("braced"), ref.group("rest") or ""
            if var and SECRETISH.search(var):
                # required (:? or ?), or optional with an empty default: never a default value
                assert rest in ("", "-", ":-") or rest.startswith(("?", ":?")), f"{name}: {ref.group(0)} has a default"


def test_every_variable_is_documented_in_env_example_and_secrets_are_left_empty_there() -> None:
    used = {m.group("braced") or m.group("bare") for text in _strings(COMPOSE) for m in VAR_REF.finditer(text)}
    documented = _env_example()
    assert used <= set(documented), f"not in .env.example: {sorted(used - set(documented))}"
    assert set(documented) <= used, f"in .env.example but unused: {sorted(set(documented) - used)}"
    for key, value in documented.items():
        if SECRETISH.search(key):
            assert value == "", f".env.example must not carry a value for {key}"


def test_passwords_are_required_not_defaulted() -> None:
    """A password left unset stops `docker compose up` instead of starting a service without one."""
    required = {
        m.group("braced")
        for text in _strings(COMPOSE)
        for m in VAR_REF.finditer(text)
        if (m.group("rest") or "").startswith(":?")
    }
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "MDP_S3_SECRET_KEY"} <= required


def test_env_is_ignored_by_git_and_kept_out_of_the_image() -> None:
    if shutil.which("git") and (REPO / ".git").exists():
        assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO).returncode == 0, ".env not ignored"
    else:
        assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    # the build copies the whole context (COPY . .): without this, a .env would be baked into the image's layers
    assert ".env" in (REPO / ".dockerignore").read_text().splitlines()


@pytest.mark.parametrize("name", BUILT)
def test_each_service_gets_only_the_secrets_it_uses(name: str) -> None:
    env = _environment(SERVICES[name])
    # MinIO's root account is for minio-init alone; the lake is reached with the bucket-only key
    assert not any("MINIO_ROOT" in value for value in env.values()), name
    if name == "ingest":
        assert not any("POSTGRES_PASSWORD" in value for value in env.values()), "the ingestor needs no database"
    if name in ("dagster-webserver", "dagster-daemon"):
        assert "AWS_SECRET_ACCESS_KEY" not in env, f"{name} never touches the lake (runs execute in the code server)"


# --- images, healthchecks, volumes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned_to_a_version(name: str) -> None:
    service = SERVICES[name]
    image = service.get("image")
    if "build" in service:
        # built here: tagged with the package's version, so two builds of different code never share a tag
        assert image == f"mdplatform:{PYPROJECT['project']['version']}", f"{name}: {image!r}"
        return
    match = re.fullmatch(r"(?P<repo>[\w./-]+):(?P<tag>[\w.-]+)(@sha256:[0-9a-f]{64})?", str(image))
    assert match, f"{name}: image {image!r} has no tag"
    tag = match.group("tag")
    assert "latest" not in tag and re.search(r"\d", tag), f"{name}: {image!r} is not pinned to a version"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck_or_says_why_not(name: str) -> None:
    service = SERVICES[name]
    check = service.get("healthcheck")
    if check is None:
        reason = service.get("x-no-healthcheck")
        assert isinstance(reason, str) and len(reason) > 20, f"{name}: no healthcheck and no x-no-healthcheck reason"
        assert service.get("restart") == "no", f"{name}: a service without a healthcheck must be a one-shot job"
        return
    assert not check.get("disable") and check.get("test") and check["test"] != ["NONE"], name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_wait_for_something_that_happens(name: str) -> None:
    for target, spec in (SERVICES[name].get("depends_on") or {}).items():
        assert target in SERVICES, f"{name} depends on unknown service {target}"
        condition = spec["condition"]
        if condition == "service_healthy":
            assert "healthcheck" in SERVICES[target], f"{name} waits for {target} to be healthy: it has no healthcheck"
        else:
            assert condition == "service_completed_successfully" and SERVICES[target].get("restart") == "no"


def test_volumes_are_declared_and_bind_mounts_exist() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name, service in SERVICES.items():
        for source, target, bind in _mounts(service):
            if bind:
                assert (REPO / source).exists(), f"{name}: bind mount source {source} is not in the repo"
                assert not str(target).startswith("/opt/mdplatform"), f"{name}: do not mount over the image's code"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"


def test_bind_mounted_config_is_read_only() -> None:
    for name, service in SERVICES.items():
        for item in service.get("volumes") or []:
            if isinstance(item, str) and item.startswith("./"):
                assert item.endswith(":ro"), f"{name}: {item} (a container must not change the repo's files)"


# --- commands -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILT)
def test_commands_use_installed_executables(name: str) -> None:
    for argv in _commands(SERVICES[name]):
        exe = argv[0]
        if exe == "python":  # the image's interpreter, in healthchecks
            continue
        assert exe in PROJECT_SCRIPTS | DAGSTER_BINARIES, f"{name}: {exe} is neither a project script nor Dagster's"
        assert (VENV_BIN / exe).exists(), f"{name}: {exe} is not installed ({VENV_BIN})"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_files_named_by_commands_exist(name: str) -> None:
    service = SERVICES[name]
    for argv in _commands(service):
        for arg in _file_args(argv):
            where = _on_host(service, arg)
            assert where is not None, f"{name}: {arg} is neither in the image's repo copy, a bind mount nor a volume"
            if isinstance(where, Path):
                assert where.exists(), f"{name}: {arg} -> {where.relative_to(REPO)} does not exist"


@pytest.mark.parametrize("name", BUILT)
def test_commands_parse_with_the_real_cli(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown options, bad values and missing files fail here as they would when the container starts (container
    paths are mapped back to the repo files they come from)."""
    service = SERVICES[name]
    monkeypatch.chdir(REPO)
    for argv in _commands(service):
        if argv[0] == "python":
            compile(argv[argv.index("-c") + 1], f"{name} healthcheck", "exec")
            continue
        mapped = []
        for arg in argv[1:]:
            where = _on_host(service, arg) if arg.startswith("/") else None
            mapped.append(str(where) if isinstance(where, Path) else arg)
        _parse(argv[0], mapped)


def test_parse_catches_a_bad_option() -> None:
    # the check above must be able to fail: code-server takes -f/-m, not a workspace file
    with pytest.raises(click.UsageError):
        _parse("dagster", ["code-server", "start", "-p", "4000", "-w", "workspace.yaml"])


def test_the_image_installs_the_package_non_editable() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    install = [line for line in lines if re.search(r"pip install .*--no-deps \.(\s|$)", line)]
    assert install, "the Dockerfile must install the package itself"
    assert not any(re.search(r"(\s-e\s|--editable)", line) for line in install)


# --- what the commands run ------------------------------------------------------------------------------------------


def test_the_ingestor_config_collects_binance_and_okx_from_the_real_exchanges() -> None:
    from mdplatform.collector import load_config
    from mdplatform.exchanges import get_exchange

    argv = SERVICES["ingest"]["command"]
    path = _on_host(SERVICES["ingest"], argv[argv.index("--config") + 1])
    assert isinstance(path, Path) and path == REPO / "config" / "ingest.yaml"
    config = load_config(path)  # validates every channel against the exchange's capabilities
    by_exchange = {c.exchange: c for c in config.collectors}
    assert set(by_exchange) == {"binance", "okx"}
    for exchange_id, collector in by_exchange.items():
        caps = get_exchange(exchange_id).capabilities
        assert collector.ws_url is None and collector.rest_url is None, "the real exchanges' endpoints"
        channels = set(collector.channels)
        assert channels & caps.trade_channels and channels & caps.book_channels and channels & caps.ticker_channels
        assert {s[:3] for s in collector.symbols} == {"BTC", "ETH"}
    # the lake comes from MDP_LAKE; the journal must be on a volume, or a restart loses what it holds
    assert config.lake is None and config.journal is not None
    assert isinstance(_on_host(SERVICES["ingest"], config.journal), str)
    status = argv[argv.index("--status-file") + 1]
    assert isinstance(_on_host(SERVICES["ingest"], status), str), "the status file must be on a volume"
    assert status in SERVICES["ingest"]["healthcheck"]["test"][-1]


def test_the_workspace_points_at_the_code_server() -> None:
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    code = SERVICES[grpc["host"]]["command"]
    assert code[:3] == ["dagster", "code-server", "start"]
    assert code[code.index("-p") + 1] == str(grpc["port"])
    assert code[code.index("--location-name") + 1] == grpc["location_name"]
    assert code[code.index("-h") + 1] == "0.0.0.0", "the code server must listen on the compose network"
    for name in ("dagster-webserver", "dagster-daemon"):
        argv = SERVICES[name]["command"]
        assert argv[argv.index("-w") + 1] == "deploy/workspace.yaml", name


DAGSTER_SERVICES = ["dagster-code-server", "dagster-webserver", "dagster-daemon"]


def _instance_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    from dagster._core.instance.config import dagster_instance_config

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    shutil.copyfile(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    return dict(config)


@pytest.mark.parametrize("name", DAGSTER_SERVICES)
def test_the_dagster_instance_is_postgres_from_env_and_valid(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = SERVICES[name]
    env = _environment(service)
    home = env["DAGSTER_HOME"]
    assert _on_host(service, f"{home}/dagster.yaml") == REPO / "deploy" / "dagster.yaml"
    assert env["DAGSTER_DISABLE_TELEMETRY"] == "1"
    raw = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    db = raw["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    # every piece but the port from the environment: the file holds no credentials
    refs = {key: value["env"] for key, value in db.items() if isinstance(value, dict)}
    assert set(refs) == {"hostname", "username", "password", "db_name"}
    assert all(var in env for var in refs.values()), f"{name} lacks {set(refs.values()) - set(env)}"
    assert env[refs["hostname"]] in SERVICES and env[refs["db_name"]] == "dagster"
    # validated against the installed Dagster's instance schema, with the service's variables set (dummies for
    # references to .env)
    config = _instance_config(monkeypatch, tmp_path, {k: "x" if "$" in v else v for k, v in env.items()})
    assert config["telemetry"] == {"enabled": False}
    for key in ("local_artifact_storage", "compute_logs"):
        cls = config[key]
        getattr(import_module(cls["module"]), cls["class"])
        assert _on_host(service, cls["config"]["base_dir"]) == "dagster-storage", f"{name}: {key} not on the volume"


def test_the_compose_instance_keeps_the_repos_concurrency_limits() -> None:
    ours = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())["concurrency"]
    assert ours == yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]


def test_the_postgres_init_creates_the_dagster_database() -> None:
    sql = (REPO / "deploy" / "postgres-init" / "10-dagster-database.sql").read_text()
    assert re.search(r"^CREATE DATABASE dagster;", sql, re.MULTILINE)
    assert _on_host(SERVICES["timescaledb"], "/docker-entrypoint-initdb.d") == REPO / "deploy" / "postgres-init"


def test_minio_init_uses_files_it_has() -> None:
    service = SERVICES["minio-init"]
    script = (REPO / "deploy" / "minio" / "init.sh").read_text()
    for path in re.findall(r"/deploy/\S+", script):
        where = _on_host(service, path)
        assert isinstance(where, Path) and where.exists(), path
    # the secrets it uses come from its environment, never echoed
    for var in re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", script):
        assert var in _environment(service), var
    assert "set -x" not in script


def test_telemetry_is_off() -> None:
    assert _environment(SERVICES["timescaledb"])["TIMESCALEDB_TELEMETRY"] == "off"
    assert "DAGSTER_DISABLE_TELEMETRY=1" in (REPO / "Dockerfile").read_text()
    for name in DAGSTER_SERVICES:
        assert _environment(SERVICES[name])["DAGSTER_DISABLE_TELEMETRY"] == "1"


def test_the_warehouse_is_on_its_volume_and_the_ddl_in_the_package() -> None:
    service = SERVICES["dagster-code-server"]
    env = _environment(service)
    # the wheel ships sql/ (tests/deploy/test_wheel_install.py): nothing points the image at a copy of the repo
    assert "MDP_SQL_DIR" not in env
    assert _on_host(service, env["MDP_WAREHOUSE"]) == "warehouse"


def test_the_assets_load_into_timescaledb_after_its_migrations() -> None:
    """The code server (where runs execute) has the sink on, pointing at the timescaledb service with the .env
    password through libpq's PGPASSWORD; `mdp db migrate` runs first, as a one-shot the code server waits for."""
    code = _environment(SERVICES["dagster-code-server"])
    assert "host=timescaledb" in code["MDP_PG_DSN"] and "dbname=mdp" in code["MDP_PG_DSN"]
    assert code["PGPASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    migrate = SERVICES["db-migrate"]
    assert migrate["command"] == ["mdp", "db", "migrate"]
    assert _environment(migrate)["MDP_PG_DSN"] == code["MDP_PG_DSN"]
    assert migrate["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert SERVICES["dagster-code-server"]["depends_on"]["db-migrate"]["condition"] == "service_completed_successfully"
    # the ingestor needs no database
    assert "MDP_PG_DSN" not in _environment(SERVICES["ingest"])


def _pins(name: str) -> dict[str, str]:
    text = (REPO / name).read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)$", text, re.MULTILINE))


def test_the_image_has_dagster_postgres() -> None:
    """deploy/dagster.yaml's PostgreSQL run storage loads in the image: the lock it installs has the package."""
    assert "dagster-postgres" in _pins("requirements-runtime.lock")


def test_the_image_installs_runtime_dependencies_only() -> None:
    """The Dockerfile installs requirements-runtime.lock: every runtime dependency at the version the tests ran
    with (requirements.lock), and none of the dev extra's tools."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "-r requirements-runtime.lock" in dockerfile and "requirements.lock" not in dockerfile.replace(
        "requirements-runtime.lock", ""
    )
    runtime, dev = _pins("requirements-runtime.lock"), _pins("requirements.lock")
    assert {"dagster", "duckdb", "polars", "picows", "great-expectations", "prometheus-client"} <= set(runtime)
    assert {k: v for k, v in runtime.items() if dev.get(k) != v} == {}  # the versions the tests ran with
    tools = {"pytest", "pytest-xdist", "moto", "mypy", "ruff", "playwright", "nbclient", "ipykernel"}
    assert tools <= set(dev) and not tools & set(runtime)
