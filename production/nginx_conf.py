"""nginx's configuration for the production topology, from production/nginx.conf.template.

One template, two renderings: `here` for `make up-prod` (every process on this machine's
loopback, nginx run by the project with its files under var/prod/) and `compose` for
docker-compose (services by name; written to docker/nginx.conf, which a test keeps current).

    python -m production.nginx_conf compose > docker/nginx.conf
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
ROOT = Path(__file__).resolve().parent.parent
MESSAGE_RATE = 5  # messages a second per client address, with a burst of MESSAGE_BURST
MESSAGE_BURST = 30


@dataclass
class Topology:
    """Where nginx listens and what it forwards to."""

    public_listen: str
    internal_listen: str
    rasa: list[str]
    actions: list[str]
    console: list[str]
    widget_root: str
    models_root: str
    run_dir: str = ""  # pid, logs and temp files; empty: the image's defaults
    user: str = ""
    mime_types: str = "/etc/nginx/mime.types"
    temp: str = ""  # nginx's temporary files; empty: under run_dir
    extra: dict[str, str] = field(default_factory=dict)


def servers(addresses: list[str], options: str) -> str:
    return "\n".join(f"    server {address}{options};" for address in addresses)


def render(topology: Topology) -> str:
    run = topology.run_dir
    values = {
        "PID_FILE": f"{run}/nginx.pid" if run else "/var/run/nginx.pid",
        "ERROR_LOG": f"{run}/nginx-error.log" if run else "/dev/stderr",
        "ACCESS_LOG": f"{run}/nginx-access.log" if run else "/dev/stdout",
        "TEMP": topology.temp or f"{run}/nginx-temp",
        "USER_LINE": f"user {topology.user};" if topology.user else "",
        "MIME_TYPES": topology.mime_types,
        "PUBLIC_LISTEN": topology.public_listen,
        "INTERNAL_LISTEN": topology.internal_listen,
        # a Rasa replica is never marked down for a slow answer (one 30 s wait made both "failed":
        # 502 for everyone); a refused connection is still passed to the next one, request by request
        "RASA_SERVERS": servers(topology.rasa, " max_fails=0"),
        # the others: one that fails is left alone for 5 s, then tried again
        "ACTION_SERVERS": servers(topology.actions, " max_fails=1 fail_timeout=5s"),
        "CONSOLE_SERVERS": servers(topology.console, " max_fails=1 fail_timeout=5s"),
        "WIDGET_ROOT": topology.widget_root,
        "MODELS_ROOT": topology.models_root,
        "MESSAGE_RATE": str(MESSAGE_RATE),
        "MESSAGE_BURST": str(MESSAGE_BURST),
        **topology.extra,
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    if "@@" in text:
        raise ValueError(f"unfilled placeholder in {TEMPLATE}: {text[text.index('@@'):][:40]}")
    return text


def here(run_dir: Path, port: int, internal_port: int, rasa_ports: list[int], action_ports: list[int],
         console_ports: list[int], public_host: str = "127.0.0.1") -> Topology:
    """Every process on loopback; nginx alone may listen beyond it (`public_host`)."""
    return Topology(
        public_listen=f"{public_host}:{port}", internal_listen=f"127.0.0.1:{internal_port}",
        rasa=[f"127.0.0.1:{p}" for p in rasa_ports], actions=[f"127.0.0.1:{p}" for p in action_ports],
        console=[f"127.0.0.1:{p}" for p in console_ports], widget_root=str(ROOT / "widget"),
        models_root=str(ROOT / "models"), run_dir=str(run_dir))


def compose() -> Topology:
    """docker-compose: services resolved by name (each replica of `rasa` and `action-server`)."""
    return Topology(public_listen="8000", internal_listen="8001", rasa=["rasa-replica:5005"],
                    actions=["action-server-replica:5055"], console=["console-prod:8090"],
                    widget_root="/srv/widget", models_root="/srv/models", temp="/var/cache/nginx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("where", choices=["compose"])
    parser.parse_args(argv)
    sys.stdout.write(render(compose()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
