"""docker-compose.yml runs the same assistant; no Docker engine here, so parse and validate it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


SMALL = {"rasa", "action-server", "console"}
PROD = {"postgres", "redis", "models", "rasa-replica", "action-server-replica", "console-prod", "nginx"}


def test_services_ports_and_volumes(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == SMALL | PROD
    assert all(services[name]["profiles"] == ["small"] for name in SMALL)
    assert "5005:5005" in services["rasa"]["ports"]
    assert "5055" in [str(p) for p in services["action-server"]["expose"]]
    assert "ports" not in services["action-server"]  # internal only: the compose network reaches it, no host
    assert services["rasa"]["depends_on"] == ["action-server"]
    assert any(v.endswith(":/app/var") for v in services["rasa"]["volumes"])
    assert "rasa-var" in compose["volumes"]
    assert "./kb:/app/kb:ro" in services["action-server"]["volumes"]
    command = services["rasa"]["command"]
    assert "--enable-api" in command and "--auth-token" in command
    assert command[command.index("--endpoints") + 1] == "docker/endpoints.yml"
    assert command[command.index("--credentials") + 1] == "docker/credentials.yml"
    credentials = yaml.safe_load((ROOT / "docker" / "credentials.yml").read_text(encoding="utf-8"))
    assert {"channels.rest.RestInput", "channels.wechat.WeChatInput", "channels.wecom.WeComInput"} <= set(credentials)
    assert {"WECHAT_TOKEN", "WECOM_TOKEN", "WECHAT_ENCODING_AES_KEY", "MAX_MESSAGE_CHARS"} <= set(
        services["rasa"]["environment"])


@pytest.mark.parametrize("path", ["credentials.yml", "docker/credentials.yml"])
def test_rest_is_the_bounded_channel_not_rasas_own(path: str) -> None:
    """Rasa's `rest` passes any body and any size on to NLU; channels/rest.py checks and bounds it."""
    credentials = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    assert "channels.rest.RestInput" in credentials and "rest" not in credentials


def test_the_console_shares_the_database_and_reaches_rasa(compose: dict) -> None:
    services = compose["services"]
    console = services["console"]
    assert console["image"] == services["rasa"]["image"] and console["entrypoint"] == ["python", "-m", "console"]
    assert "8090:8090" in console["ports"] and console["environment"]["RASA_URL"] == "http://rasa:5005"
    urls = {name: services[name]["environment"]["DATABASE_URL"] for name in ("rasa", "action-server", "console")}
    assert len(set(urls.values())) == 1, urls  # cases opened by actions are the ones the console shows
    assert all(any(v.endswith(":/app/var") for v in services[name]["volumes"]) for name in urls)


def test_the_compose_console_sends_its_cookie_over_https_only(compose: dict) -> None:
    """Behind TLS in production: `Secure` unless the operator says otherwise; `make run` on
    http://localhost (scripts/run.sh sets nothing) keeps it off."""
    from console.__main__ import secure_cookie

    setting = compose["services"]["console"]["environment"]["CONSOLE_SECURE_COOKIE"]
    default = re.fullmatch(r"\$\{CONSOLE_SECURE_COOKIE:-([^}]*)\}", setting)
    assert default, setting  # overridable from the environment or .env
    assert secure_cookie({"CONSOLE_SECURE_COOKIE": default.group(1)}) is True
    assert secure_cookie({}) is False and secure_cookie({"CONSOLE_SECURE_COOKIE": "0"}) is False
    assert "CONSOLE_SECURE_COOKIE" not in (ROOT / "scripts" / "run.sh").read_text(encoding="utf-8")


def test_each_image_has_the_packages_its_code_imports() -> None:
    """actions/ and channels/ import cases/: both images copy it; the console ships in the rasa image."""
    actions = (ROOT / "docker" / "Dockerfile.actions").read_text(encoding="utf-8")
    rasa = (ROOT / "docker" / "Dockerfile.rasa").read_text(encoding="utf-8")
    assert "COPY cases ./cases" in actions and "sqlalchemy" in actions.lower()
    assert all(f"COPY {folder} ./{folder}" in rasa for folder in ("cases", "console", "kb", "channels"))
    for package, dockerfile in (("actions", actions), ("channels", rasa), ("console", rasa), ("insight", rasa)):
        imported = set()
        for module in (ROOT / package).glob("*.py"):
            imported |= set(re.findall(r"^(?:import|from) (actions|cases|channels|console|insight|production)\b",
                                       module.read_text(encoding="utf-8"), re.M))
        assert all(f"COPY {name} ./{name}" in dockerfile for name in imported), (package, imported)


def test_images_are_pinned_to_the_installed_versions(compose: dict) -> None:
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    rasa = re.search(r"^rasa==([\d.]+)$", lock, re.M).group(1)
    sdk = re.search(r"^rasa-sdk==([\d.]+)$", lock, re.M).group(1)
    for service, base in (("rasa", f"rasa/rasa:{rasa}"), ("action-server", f"rasa/rasa-sdk:{sdk}")):
        dockerfile = ROOT / compose["services"][service]["build"]["dockerfile"]
        assert dockerfile.read_text(encoding="utf-8").startswith("#") and f"FROM {base}\n" in dockerfile.read_text()


def test_docker_endpoints_point_at_the_action_service() -> None:
    endpoints = yaml.safe_load((ROOT / "docker" / "endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["action_endpoint"]["url"] == "http://action-server:5055/webhook"
    assert endpoints["tracker_store"]["type"] == "SQL"


def test_rasa_shows_the_action_server_the_secret_it_asks_for(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both services get ACTIONS_SECRET; Rasa sends it (as Rasa reads the file), the server checks it."""
    from rasa.utils.endpoints import read_endpoint_config

    from actions import secret

    services = compose["services"]
    for name in ("rasa", "action-server"):
        assert services[name]["environment"]["ACTIONS_SECRET"].startswith("${ACTIONS_SECRET:?"), name
    monkeypatch.setenv("ACTIONS_SECRET", "compose-test-secret-0123456789")
    endpoint = read_endpoint_config(str(ROOT / "docker" / "endpoints.yml"), "action_endpoint")
    assert endpoint.headers == secret.headers("compose-test-secret-0123456789") and not endpoint.token
    dockerfile = (ROOT / "docker" / "Dockerfile.actions").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["python", "-m", "actions.server"]' in dockerfile  # not rasa-sdk's open `start`
    assert 'CMD ["--host", "0.0.0.0", "--port", "5055"]' in dockerfile


def test_files_the_dockerfiles_copy_exist() -> None:
    for dockerfile in (ROOT / "docker").glob("Dockerfile.*"):
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            if line.startswith("COPY ") and not line.startswith("COPY --from="):  # --from: an earlier stage
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists(), f"{dockerfile.name}: {source}"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_validates_the_file() -> None:
    env = {**os.environ, "RASA_AUTH_TOKEN": "test-token", "ACTIONS_SECRET": "compose-test-secret-0123456789"}
    ok = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True)
    assert ok.returncode == 0, ok.stderr.decode()
    for required in ("RASA_AUTH_TOKEN", "ACTIONS_SECRET"):
        without = {key: value for key, value in env.items() if key != required}
        refused = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], env=without,
                                 capture_output=True)
        assert refused.returncode != 0 and required.encode() in refused.stderr, required


def test_the_actions_image_has_what_the_answer_ranker_reads() -> None:
    """actions/ reads kb/, lexicon/ and jieba_dict/ and imports jieba and pypinyin: the image has them."""
    dockerfile = (ROOT / "docker" / "Dockerfile.actions").read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "actions").glob("*.py"))
    folders = {f for f in ("kb", "lexicon", "jieba_dict") if f'/ "{f}"' in source}
    assert folders == {"kb", "lexicon", "jieba_dict"}
    assert all(f"COPY {folder} ./{folder}" in dockerfile for folder in folders)
    installed = re.search(r"grep -iE '\^\(([^)]*)\)==' requirements.lock", dockerfile).group(1).split("|")
    for module in ("jieba", "pypinyin"):
        assert re.search(rf"^\s*(?:import|from) {module}\b", source, re.M) and module in installed
        assert re.search(rf"^{module}==", (ROOT / "requirements.lock").read_text(encoding="utf-8"), re.M | re.I)


def test_the_rasa_image_has_what_the_pipeline_needs() -> None:
    """Every folder config.yml points at is copied; every package the components import is installed."""
    dockerfile = (ROOT / "docker" / "Dockerfile.rasa").read_text(encoding="utf-8")
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    folders = [c[key] for c in config["pipeline"] for key in ("lexicon_path", "dictionary_path") if key in c]
    assert folders and all(f"COPY {folder} ./{folder}" in dockerfile for folder in folders)
    installed = re.search(r"grep -iE '\^\(([^)]*)\)==' requirements.lock", dockerfile).group(1).split("|")
    imported = set()
    for module in (ROOT / "components").glob("*.py"):
        imported |= set(re.findall(r"^\s*(?:import|from) (\w+)", module.read_text(encoding="utf-8"), re.M))
    third_party = {"opencc": "opencc", "pypinyin": "pypinyin", "jieba": "jieba", "spacy": "spacy"}
    needed = {package for module, package in third_party.items() if module in imported}
    assert needed == {"opencc", "pypinyin", "jieba", "spacy"}
    assert needed <= {name.lower() for name in installed}
    assert "defusedxml" in installed and "COPY channels ./channels" in dockerfile


def test_the_prod_profile_is_the_production_topology(compose: dict) -> None:
    """Replicas behind nginx, the only published port; health checks and restarts everywhere."""
    services = compose["services"]
    assert all(services[name]["profiles"] == ["prod"] for name in PROD)
    published = {name for name in PROD if services[name].get("ports")}
    assert published == {"nginx"} and services["nginx"]["ports"] == ["8000:8000"]
    assert services["rasa-replica"]["deploy"]["replicas"] >= 2
    assert services["action-server-replica"]["deploy"]["replicas"] >= 2
    for name in PROD - {"models"}:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert {"postgres-data", "models"} <= set(compose["volumes"])
    urls = {services[name]["environment"]["DATABASE_URL"] for name in ("rasa-replica", "action-server-replica",
                                                                       "console-prod")}
    assert len(urls) == 1 and next(iter(urls)).startswith("postgresql://zhuqi:")
    assert services["rasa-replica"]["environment"]["SOCKETIO_REDIS_URL"] == "redis://redis:6379/0"
    # the REST webhook is never open in production: channels/rest.py refuses to start without its token
    assert services["rasa-replica"]["environment"]["REST_TOKEN_REQUIRED"] == "1"
    assert "REST_TOKEN_REQUIRED" not in services["rasa"]["environment"]
    command = services["rasa-replica"]["command"]
    assert command[command.index("--endpoints") + 1] == "docker/endpoints.prod.yml"
    assert "./docker/nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]


def test_prod_endpoints_share_postgres_redis_and_the_model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "compose-test")
    monkeypatch.setenv("ACTIONS_SECRET", "compose-test-secret-0123456789")
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import read_endpoint_config

    path = str(ROOT / "docker" / "endpoints.prod.yml")
    endpoints = yaml.safe_load((ROOT / "docker" / "endpoints.prod.yml").read_text(encoding="utf-8"))
    assert endpoints["tracker_store"]["dialect"] == "postgresql" and endpoints["tracker_store"]["url"] == "postgres"
    assert endpoints["action_endpoint"]["url"] == "http://nginx:8001/webhook"
    assert endpoints["models"]["url"] == "http://nginx:8001/models/zhuqi.tar.gz"
    store = LockStore.create(read_endpoint_config(path, "lock_store"))
    assert type(store).__module__ == "production.lock_store"


def test_docker_nginx_conf_is_rendered_from_the_template() -> None:
    """The compose front and `make up-prod`'s come from one template: regenerate with
    `python -m production.nginx_conf compose > docker/nginx.conf`."""
    from production import nginx_conf

    assert (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8") == nginx_conf.render(nginx_conf.compose())


def test_env_example_names_every_setting_compose_reads() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text(encoding="utf-8")))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert used - {"DATABASE_URL"} <= named, used - named  # DATABASE_URL: small profile's optional override
    assert "COMPOSE_PROFILES" in named and not re.search(r"^(RASA_AUTH_TOKEN|ACTIONS_SECRET)=\S", example, re.M)
