"""The run launchers and the sharded collectors of deploy/ (docs/scaling.md), read as YAML: Docker and Kubernetes
cannot run here. Each file is checked against what it must agree with: the compose stack it overrides, the instance of
deploy/dagster.yaml, Dagster's own config schemas (dagster-docker's where it is installed), the value names of
Dagster's Helm chart, this repo's settings, image tag and collector config, and the real CLIs its commands call."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_compose import COMPOSE, REPO, SECRET_REF, SECRETISH, SERVICES, VAR_REF, _env_example, _environment, _parse

from mdplatform.collector import load_config

DEPLOY = REPO / "deploy"
DOCKER: dict[str, Any] = yaml.safe_load((DEPLOY / "dagster-docker.yaml").read_text())
OVERRIDE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.docker-launcher.yml").read_text())
VALUES: dict[str, Any] = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
COLLECTORS: list[dict[str, Any]] = list(yaml.safe_load_all((DEPLOY / "k8s" / "collectors.yaml").read_text()))
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
LAUNCHER = DOCKER["run_launcher"]["config"]
DAGSTER_SERVICES = ("dagster-code-server", "dagster-webserver", "dagster-daemon")
#: the settings docs/operations.md documents (its table of variables)
SETTINGS = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", (REPO / "docs" / "operations.md").read_text(), re.MULTILINE))


def _merged(name: str) -> dict[str, Any]:
    """A service of docker-compose.yml with deploy/compose.docker-launcher.yml over it, as compose merges them:
    environment by key, volumes by container path."""
    base, over = SERVICES[name], OVERRIDE["services"].get(name, {})
    volumes = {str(v).split(":")[1]: str(v) for v in [*base.get("volumes", []), *over.get("volumes", [])]}
    return {
        **base,
        **over,
        "environment": {**_environment(base), **_environment(over)},
        "volumes": list(volumes.values()),
    }


def _mounted(service: dict[str, Any]) -> dict[str, str]:
    """container path -> source of each of a service's volumes."""
    return {str(v).split(":")[1]: str(v).split(":")[0] for v in service["volumes"]}


# --- Docker: deploy/dagster-docker.yaml and deploy/compose.docker-launcher.yml ---------------------------------------


def test_the_docker_instance_is_the_compose_instance_plus_a_run_launcher(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dagster._core.instance.config import dagster_instance_config

    base = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert {k: v for k, v in DOCKER.items() if k != "run_launcher"} == base
    assert (DOCKER["run_launcher"]["module"], DOCKER["run_launcher"]["class"]) == (
        "dagster_docker",
        "DockerRunLauncher",
    )
    # the installed Dagster's instance schema accepts the file (with the daemon's variables set)
    for key, value in _merged("dagster-daemon")["environment"].items():
        monkeypatch.setenv(key, "x" if "$" in value else value)
    shutil.copyfile(DEPLOY / "dagster-docker.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_launcher"]["config"] == LAUNCHER


def test_the_launcher_config_is_what_dagster_docker_takes() -> None:
    docker = pytest.importorskip("dagster_docker", reason="dagster-docker is not installed (docs/scaling.md)")
    from dagster._config import process_config
    from dagster_docker.utils import validate_docker_config, validate_docker_image

    got = process_config(docker.DockerRunLauncher.config_type(), LAUNCHER)
    assert got.success, got.errors
    validate_docker_config(LAUNCHER.get("network"), LAUNCHER.get("networks"), LAUNCHER.get("container_kwargs"))
    validate_docker_image(LAUNCHER["image"])


def test_run_containers_join_the_compose_project_with_the_code_servers_settings() -> None:
    project = OVERRIDE["name"]
    # the image compose builds, on the project's network
    assert LAUNCHER["image"] == COMPOSE["x-mdp-image"]["image"] == f"mdplatform:{VERSION}"
    assert LAUNCHER["network"] == f"{project}_default"
    # the volumes the code server has, where it has them (compose names them <project>_<volume>)
    code = _merged("dagster-code-server")
    for item in LAUNCHER["container_kwargs"]["volumes"]:
        volume, target = item.split(":")
        assert volume.startswith(f"{project}_") and volume.removeprefix(f"{project}_") in COMPOSE["volumes"], item
        assert _mounted(code)[target] == volume.removeprefix(f"{project}_"), item
    # every setting the code server has goes to the runs, with the code server's value, through the daemon
    # (names only in the launcher's config: the values are the daemon's)
    forwarded = LAUNCHER["env_vars"]
    assert all("=" not in name for name in forwarded)
    code_env = code["environment"]
    assert set(code_env) - {"DAGSTER_HOME"} <= set(forwarded), set(code_env) - set(forwarded)
    daemon_env = _merged("dagster-daemon")["environment"]
    for name in forwarded:
        assert name in daemon_env, f"the daemon cannot forward {name}: it does not have it"
        if name in code_env:
            assert daemon_env[name] == code_env[name], name


def test_the_override_mounts_the_instance_and_the_socket_and_writes_no_secret() -> None:
    assert set(OVERRIDE["services"]) == set(DAGSTER_SERVICES) and set(OVERRIDE["services"]) <= set(SERVICES)
    for name in DAGSTER_SERVICES:
        service = _merged(name)
        home = service["environment"]["DAGSTER_HOME"]
        # the instance file replaces deploy/dagster.yaml at DAGSTER_HOME, read-only
        assert f"./deploy/dagster-docker.yaml:{home}/dagster.yaml:ro" in service["volumes"], name
        socket = "/var/run/docker.sock" in _mounted(service)
        assert socket == (name != "dagster-code-server"), (
            f"{name}: the Docker socket only where runs are started/stopped"
        )
    for item in (v for s in OVERRIDE["services"].values() for v in s.get("volumes", [])):
        source = item.split(":")[0]
        if source.startswith("./"):
            assert (REPO / source).exists() and item.endswith(":ro"), item
    documented = set(_env_example())
    for key, value in _environment(OVERRIDE["services"]["dagster-daemon"]).items():
        refs = {m.group("braced") or m.group("bare") for m in VAR_REF.finditer(value)}
        assert refs <= documented, f"{key}: {refs - documented} not in .env.example"
        if key.endswith("_DSN"):
            assert not re.search(r"password|user=|\$", value, re.IGNORECASE), "a DSN without credentials"
        elif SECRETISH.search(key):
            assert SECRET_REF.match(value), f"{key} must come from .env, not be written here"


# --- Kubernetes: deploy/k8s/values.yaml (Dagster's Helm chart) -------------------------------------------------------

#: the chart's names for what this file sets (helm/dagster/schema in dagster-io/dagster, chart 1.13)
K8S_RUN_LAUNCHER_KEYS = {
    "image",
    "imagePullPolicy",
    "jobNamespace",
    "loadInclusterConfig",
    "kubeconfigFile",
    "envConfigMaps",
    "envSecrets",
    "envVars",
    "volumeMounts",
    "volumes",
    "labels",
    "failPodOnRunFailure",
    "resources",
    "schedulerName",
    "securityContext",
    "runK8sConfig",
}
RUN_K8S_CONFIG_KEYS = {"containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"}


def test_the_helm_values_use_the_charts_names() -> None:
    lock = (REPO / "requirements.lock").read_text()
    chart = re.search(r"dagster/dagster --version (\S+)", (DEPLOY / "k8s" / "values.yaml").read_text())
    assert chart and re.search(rf"^dagster=={re.escape(chart.group(1))}$", lock, re.MULTILINE), "chart != library"
    launcher = VALUES["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher" and set(launcher["config"]) == {"k8sRunLauncher"}
    assert set(launcher["config"]["k8sRunLauncher"]) <= K8S_RUN_LAUNCHER_KEYS
    assert set(launcher["config"]["k8sRunLauncher"].get("runK8sConfig", {})) <= RUN_K8S_CONFIG_KEYS
    assert set(VALUES["concurrency"]) <= {"enabled", "pools", "runs"}
    assert set(VALUES["concurrency"]["pools"]) <= {"defaultLimit", "granularity", "opGranularityRunBuffer"}
    assert set(VALUES["concurrency"]["runs"]) <= {"maxConcurrentRuns", "tagConcurrencyLimits"}
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    assert {"name", "image", "port"} <= set(deployment)


def test_the_helm_values_keep_the_instance_limits_and_no_credentials() -> None:
    ours = yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]
    concurrency = VALUES["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"] == {"defaultLimit": ours["pools"]["default_limit"]}
    assert concurrency["runs"] == {
        "maxConcurrentRuns": ours["runs"]["max_concurrent_runs"],
        "tagConcurrencyLimits": ours["runs"]["tag_concurrency_limits"],
    }
    # the instance's PostgreSQL is an existing one, its password in a Secret the file only names
    assert VALUES["postgresql"]["enabled"] is False and VALUES["generatePostgresqlPasswordSecret"] is False
    assert VALUES["global"]["postgresqlSecretName"] and "postgresqlPassword" not in VALUES["postgresql"]
    assert VALUES["postgresql"]["postgresqlDatabase"] == "dagster"
    assert VALUES["telemetry"] == {"enabled": False}
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert not [k for k in env if SECRETISH.search(k) and k != "MDP_PG_DSN"], "secrets come from envSecrets"
    assert env["MDP_LAKE"].startswith("s3://")
    assert not re.search(r"\b(user|password)=", env["MDP_PG_DSN"]), "the DSN names no credentials (PGUSER/PGPASSWORD)"
    assert "dbname=mdp" in env["MDP_PG_DSN"]
    assert {s["name"] for s in deployment["envSecrets"]} == {"mdp-lake", "mdp-postgres"}
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}, "runs must see the lake as the code does"
    assert set(env) - {"AWS_DEFAULT_REGION"} <= SETTINGS | {"DAGSTER_DISABLE_TELEMETRY"}, "undocumented settings"
    # the catalog's folder is a volume of the pod
    mounts = {m["mountPath"]: m["name"] for m in deployment["volumeMounts"]}
    assert mounts[str(Path(env["MDP_WAREHOUSE"]).parent)] in {v["name"] for v in deployment["volumes"]}


def test_the_code_server_args_parse_with_the_real_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["tag"] == VERSION
    args = [str(REPO) if a == "/opt/mdplatform" else a for a in deployment["dagsterApiGrpcArgs"]]
    assert args != deployment["dagsterApiGrpcArgs"], "the image's copy of the repo is /opt/mdplatform"
    monkeypatch.chdir(REPO)
    # what the chart runs: dagster api grpc -h 0.0.0.0 -p <port> <dagsterApiGrpcArgs>
    ctx = _parse("dagster", ["api", "grpc", "-h", "0.0.0.0", "-p", str(deployment["port"]), *args])
    assert ctx.params["python_file"] == "definitions.py" and (REPO / "definitions.py").exists()


# --- Kubernetes: deploy/k8s/collectors.yaml (the sharded collectors) -------------------------------------------------


def _statefulset() -> tuple[dict[str, Any], dict[str, Any]]:
    (sts,) = [d for d in COLLECTORS if d["kind"] == "StatefulSet"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    return sts, container


def test_each_pod_collects_the_shard_of_its_index_and_every_pair_is_collected() -> None:
    sts, container = _statefulset()
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    match = re.fullmatch(r"\$\(POD_INDEX\)/(\d+)", env["MDP_SHARD"]["value"])
    assert match, env["MDP_SHARD"]
    count = int(match.group(1))
    assert sts["spec"]["replicas"] == count, "replicas and the shard count change together"
    assert {d["kind"] for d in COLLECTORS} == {"Service", "StatefulSet"}
    assert sts["spec"]["serviceName"] in {d["metadata"]["name"] for d in COLLECTORS if d["kind"] == "Service"}
    # the config the pods mount: every shard has something to collect, together they collect every pair once
    config = REPO / "config" / "ingest.yaml"
    pairs = [(c.exchange, s) for c in load_config(config).collectors for s in c.symbols]
    collected = [
        (c.exchange, s)
        for i in range(count)
        for c in load_config(config, shard=f"{i}/{count}").assigned()
        for s in c.symbols
    ]
    assert sorted(collected) == sorted(pairs)
    assert set(env) - {"POD_INDEX", "AWS_DEFAULT_REGION"} <= SETTINGS | {"MDP_SHARD"}
    assert "MDP_SHARD" in SETTINGS, "docs/operations.md lists MDP_SHARD"


def test_the_collector_pods_run_a_command_that_parses_with_their_journal_on_their_own_volume() -> None:
    sts, container = _statefulset()
    assert container["image"].endswith(f":{VERSION}")
    argv = container["command"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    config_path = argv[argv.index("--config") + 1]
    assert mounts[str(Path(config_path).parent)] == "config"
    # the CLI as the pod runs it, the mounted config being the repo's config/ingest.yaml
    local = REPO / "config" / Path(config_path).name
    ctx = _parse(argv[0], [str(local) if a == config_path else a for a in argv[1:]])
    assert ctx.params["config_path"] == str(local)
    config = load_config(local)
    # the journal on a volume claim of its own per pod, larger than the journal's budget
    assert config.journal is not None and mounts[config.journal] == "journal"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "journal"
    size = claim["spec"]["resources"]["requests"]["storage"]
    assert size.endswith("Gi") and int(size[:-2]) * 1024 > config.journal_budget_mb
    # the liveness probe watches the status file the command writes, on a volume
    status = argv[argv.index("--status-file") + 1]
    assert status in container["livenessProbe"]["exec"]["command"][-1]
    assert mounts[str(Path(status).parent)] == "status"
    # no secret written in the manifest: the lake's key comes from a Secret
    assert [s["secretRef"]["name"] for s in container["envFrom"]] == ["mdp-lake"]
    assert not [e for e in container["env"] if SECRETISH.search(e["name"])]
