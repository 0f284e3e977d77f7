"""Write the endpoints file `make run` and `make shell` give Rasa: python scripts/write_endpoints.py TEMPLATE PORT.

endpoints.yml is the documented default, but it cannot know the port the action server was
started on ($ACTIONS_PORT) nor the secret of this start ($ACTIONS_SECRET): with only the
template, Rasa would call whatever owns :5055, without the secret the action server asks for.
This copies TEMPLATE (its tracker store and everything else) with `action_endpoint` replaced
by the loopback URL on PORT and the Authorization header (actions/secret.py) and prints it.
The secret is read from the environment, never from the command line (`ps` shows that);
scripts/run.sh writes the output to a file only its user can read and removes it on exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from actions import secret  # noqa: E402


def endpoints(template: dict[str, Any], port: int, shared_secret: str) -> dict[str, Any]:
    """The template with the action endpoint on this port, sending this secret."""
    action = {"url": f"http://127.0.0.1:{port}/webhook", "headers": secret.headers(secret.checked(shared_secret))}
    return {**template, "action_endpoint": action}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/write_endpoints.py", description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    template = yaml.safe_load(args.template.read_text(encoding="utf-8")) or {}
    try:
        written = endpoints(template, args.port, os.environ.get(secret.SECRET_ENV, ""))
    except ValueError as refused:
        sys.exit(str(refused))
    print(f"# written by scripts/write_endpoints.py from {args.template}: do not edit")
    print(yaml.safe_dump(written, allow_unicode=True, sort_keys=False), end="")


if __name__ == "__main__":
    main()
