"""deploy/ stays valid and in step with the code: no Docker or cluster here, so the files
are parsed and checked structurally (a small kubeconform/hadolint of our own).

No database, no network: runs the same on the SQLite and PostgreSQL passes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.core.settings import ConfigurationError, Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
APP_IMAGE = "registry.example.com/xinfang/xinfang:0.1.0"
APP_SERVICES = ("api", "worker", "migrate")
PLACEHOLDER = "CHANGE-ME"

API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


DOCS = _k8s_docs()


def _objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _objects(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _workloads() -> list[dict[str, Any]]:
    return _objects("Deployment") + _objects("Job")


def _containers() -> list[dict[str, Any]]:
    return [
        c
        for w in _workloads()
        for c in _pod_spec(w)["containers"] + _pod_spec(w).get("initContainers", [])
    ]


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# ---- Kubernetes ----


def test_every_manifest_has_the_required_fields() -> None:
    assert {name for name, _ in DOCS} >= {
        "namespace.yaml",
        "configmap.yaml",
        "secret.template.yaml",
        "api.yaml",
        "worker.yaml",
        "migrate-job.yaml",
        "service.yaml",
        "hpa.yaml",
        "pdb.yaml",
    }
    for name, doc in DOCS:
        assert isinstance(doc, dict), name
        kind = doc.get("kind")
        assert kind in API_VERSIONS, f"{name}: unexpected kind {kind}"
        assert doc.get("apiVersion") == API_VERSIONS[kind], f"{name}: {kind} apiVersion"
        assert doc.get("metadata", {}).get("name"), f"{name}: metadata.name"
        if kind != "Namespace":
            assert doc["metadata"].get("namespace") == "xinfang", f"{name}: {kind} namespace"


def test_kustomization_lists_existing_files_and_no_secret() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kust["kind"] == "Kustomization"
    for resource in kust["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.template.yaml" not in kust["resources"]
    repo, _, tag = APP_IMAGE.rpartition(":")
    assert kust["images"] == [{"name": repo, "newTag": tag}]


def test_workloads_select_their_own_pods() -> None:
    for dep in _objects("Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for job in _objects("Job"):
        assert _pod_spec(job)["restartPolicy"] in {"Never", "OnFailure"}


def test_api_deployment_probes_and_security() -> None:
    api = _one("Deployment", "xinfang-api")
    (container,) = _pod_spec(api)["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz?require=database"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8000)
    assert "replicas" not in api["spec"], "the HPA owns the replica count"


def test_every_pod_is_non_root_read_only_and_has_resources() -> None:
    for work in _workloads():
        spec = _pod_spec(work)
        name = work["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= c["resources"][part].keys(), f"{name} {part}"
            # a read-only root needs a writable /tmp
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], name


def test_migrate_job_and_worker_run_the_cli() -> None:
    job = _one("Job", "xinfang-migrate")
    (migrate,) = _pod_spec(job)["containers"]
    assert migrate["command"] == ["xinfang", "migrate"]
    refs = {r["secretRef"]["name"] for r in migrate["envFrom"] if "secretRef" in r}
    assert refs == {"xinfang-migrate-secrets"}, "only migrate gets the owner's URL"
    (worker,) = _pod_spec(_one("Deployment", "xinfang-worker"))["containers"]
    assert worker["command"] == ["xinfang", "worker"]
    assert "check_health" in " ".join(worker["livenessProbe"]["exec"]["command"])


def test_every_container_runs_the_one_app_image() -> None:
    images = {c["name"]: c["image"] for c in _containers()}
    assert images.keys() >= set(APP_SERVICES)
    assert set(images.values()) == {APP_IMAGE}
    compose = _compose()["services"]
    assert {compose[s]["image"] for s in APP_SERVICES} == {APP_IMAGE}


def test_hpa_targets_the_api_deployment() -> None:
    hpa = _one("HorizontalPodAutoscaler", "xinfang-api")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "xinfang-api",
    )
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"], "an HPA needs a metric"


def test_pdb_and_service_select_the_api_pods() -> None:
    api_labels = _one("Deployment", "xinfang-api")["spec"]["template"]["metadata"]["labels"]
    worker_labels = _one("Deployment", "xinfang-worker")["spec"]["template"]["metadata"]["labels"]
    pdb = _one("PodDisruptionBudget", "xinfang-api")
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector.items() <= api_labels.items()
    assert not selector.items() <= worker_labels.items()
    service = _one("Service", "xinfang-api")
    assert service["spec"]["selector"].items() <= api_labels.items()
    assert not service["spec"]["selector"].items() <= worker_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_env_from_refers_to_existing_config() -> None:
    names = {(d["kind"], d["metadata"]["name"]) for _, d in DOCS}
    for c in _containers():
        for ref in c.get("envFrom", []):
            if "configMapRef" in ref:
                assert ("ConfigMap", ref["configMapRef"]["name"]) in names
            else:
                assert ("Secret", ref["secretRef"]["name"]) in names


_SECRETISH = re.compile(r"[A-Za-z0-9+/=_\-]{20,}")


def test_secrets_hold_only_placeholders() -> None:
    secrets = _objects("Secret")
    assert secrets
    for secret in secrets:
        assert "data" not in secret, "base64 data hides values: use stringData placeholders"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in value, f"{key} is not a placeholder"
            assert not _SECRETISH.search(value.replace(PLACEHOLDER, "")), key
    # the placeholder key is unusable: a prod process refuses to start with it
    jwt = _one("Secret", "xinfang-secrets")["stringData"]["XF_JWT_SECRET"]
    with pytest.raises(ConfigurationError):
        Settings(env="prod", jwt_secret=jwt).check_production_safety()
    for example in DEPLOY.glob("*.env.example"):
        for key, value in _env_file(example).items():
            if "SECRET" in key or "DATABASE_URL" in key:
                assert PLACEHOLDER in value, f"{example.name}: {key}"
                assert not _SECRETISH.search(value.replace(PLACEHOLDER, "")), key


# ---- settings drift ----


def _env_names() -> dict[str, set[str]]:
    """Every environment variable name the deploy files hand to the app image."""
    found: dict[str, set[str]] = {}

    def add(where: str, names: Any) -> None:
        found.setdefault(where, set()).update(names)

    for _, doc in DOCS:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ConfigMap":
            add(where, doc["data"])
        elif doc["kind"] == "Secret":
            add(where, doc["stringData"])
    for c in _containers():
        add(f"container {c['name']}", (e["name"] for e in c.get("env", [])))
    services = _compose()["services"]
    for name in APP_SERVICES:
        env = services[name].get("environment", {})
        add(f"compose {name}", env if isinstance(env, dict) else (e.split("=")[0] for e in env))
        for env_file in services[name].get("env_file", []):
            example = DEPLOY / f"{env_file}.example"
            assert example.is_file(), f"compose {name}: {env_file} has no {example.name}"
            add(f"compose {name} {env_file}", _env_file(example))
    for word, rest in _dockerfile_instructions():
        if word == "ENV":
            add("Dockerfile", (n for n in re.findall(r"(\w+)=", rest) if n.startswith("XF_")))
    return found


def test_every_env_var_is_a_setting() -> None:
    fields = {name.lower() for name in Settings.model_fields}
    names = _env_names()
    assert names["ConfigMap/xinfang-config"] >= {"XF_ENV", "XF_REDIS_URL", "XF_DB_APP_ROLE"}
    assert names["Secret/xinfang-secrets"] == {
        "XF_JWT_SECRET",
        "XF_DATABASE_URL",
        "XF_PII_KEYS",
        "XF_PII_HASH_KEY",
    }
    for where, env in names.items():
        for name in env:
            assert name.startswith("XF_"), f"{where}: {name} lacks the XF_ prefix"
            assert name[3:].lower() in fields, f"{where}: {name} is not a Settings field"


def test_config_values_parse_as_settings() -> None:
    config = _one("ConfigMap", "xinfang-config")["data"]
    values = {k[3:].lower(): v for k, v in config.items()}
    settings = Settings(**values)
    assert settings.env == "prod"
    assert settings.run_jobs_in_process is False
    assert settings.redis_url


# ---- compose ----


def test_compose_services_and_ordering() -> None:
    services = _compose()["services"]
    assert set(services) == {"api", "worker", "migrate", "postgres", "redis"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["migrate"]["command"] == ["xinfang", "migrate"]
    assert services["worker"]["command"] == ["xinfang", "worker"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        assert services[name]["environment"]["XF_ENV"] == "prod"
        assert services[name]["env_file"] == ["xinfang.env"], "the secrets come from a file"
        assert services[name]["read_only"] is True
    assert services["migrate"]["env_file"] == ["migrate.env"]
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    for name in ("worker", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"SECRET|PASSWORD$", key), f"{name}: literal {key}"
            assert "://" not in str(value) or "@" not in str(value), f"{name}: {key} credentials"


def test_compose_files_exist() -> None:
    compose = _compose()
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    assert (DEPLOY / ".gitignore").read_text().count("/secrets/") == 1
    init = DEPLOY / "postgres" / "initdb" / "10-xinfang-app-role.sh"
    assert "NOBYPASSRLS" in init.read_text()
    assert Settings.model_fields["db_app_role"].default in init.read_text()


# ---- Dockerfile ----


def test_dockerfile_lint() -> None:
    instructions = _dockerfile_instructions()
    words = [w for w, _ in instructions]
    froms = [rest for w, rest in instructions if w == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    users = [rest for w, rest in instructions if w == "USER"]
    assert users, "USER missing"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    for word, rest in instructions:
        assert not (word == "ADD" and re.match(r"(--\S+\s+)*https?://", rest)), "ADD <url>"
        assert not (word == "ADD" and "://" in rest)
        if word in {"ENV", "ARG"}:
            assert not re.search(r"(SECRET|PASSWORD|TOKEN|_KEY)\w*=", rest), f"{word} {rest}"
    runs = " ".join(rest for w, rest in instructions if w == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    assert "EXPOSE" in words and ("EXPOSE", "8000") in instructions
    (health,) = [rest for w, rest in instructions if w == "HEALTHCHECK"]
    assert "/healthz" in health and "CMD" in health
    (cmd,) = [rest for w, rest in instructions if w == "CMD"]
    assert yaml.safe_load(cmd)[:2] == ["xinfang", "serve"]
    assert "ENTRYPOINT" not in words, "compose/k8s pass a full `xinfang ...` command"


def test_dockerfile_copies_existing_paths() -> None:
    for word, rest in _dockerfile_instructions():
        if word == "COPY" and "--from" not in rest:
            *sources, _dest = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path"


def test_commands_match_the_cli() -> None:
    """Every `xinfang ...` line in deploy/ names a real command and real options."""
    import typer.main

    from backend.cli import app

    cli = typer.main.get_command(app)
    assert hasattr(cli, "commands"), "xinfang is a command group"
    (cmd,) = [rest for w, rest in _dockerfile_instructions() if w == "CMD"]
    argvs = [yaml.safe_load(cmd)]
    argvs += [c["command"] for c in _containers()]
    argvs += [s["command"] for n, s in _compose()["services"].items() if n in APP_SERVICES]
    for argv in argvs:
        assert argv[0] == "xinfang"
        command = cli.commands[argv[1]]
        options = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for arg in argv[2:]:
            if arg.startswith("--"):
                assert arg in options, f"{argv[1]} has no {arg}"
    serve = cli.commands["serve"]
    assert {p.name for p in serve.params} >= {"host", "port", "workers"}
