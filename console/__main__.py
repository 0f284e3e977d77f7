"""Start the staff console: python -m console [--host H] [--port P].

Settings from the environment: CONSOLE_HOST (127.0.0.1), CONSOLE_PORT (8090), RASA_URL
(http://localhost:5005), RASA_AUTH_TOKEN, RASA_TIMEOUT (20 s), DATABASE_URL (else var/cases.db),
CONSOLE_SECURE_COOKIE=1 behind HTTPS (docker-compose.yml sets it; off by default, so that
`make run` on http://localhost works in every browser).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping

from cases.repository import database_url, repository_for
from console.accounts import Accounts
from console.rasa_client import RasaClient
from console.server import Console, create_app


def secure_cookie(environ: Mapping[str, str]) -> bool:
    """Whether the session cookie is `Secure` (sent over HTTPS only): CONSOLE_SECURE_COOKIE=1."""
    return environ.get("CONSOLE_SECURE_COOKIE", "").strip().lower() in ("1", "true", "yes", "on")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m console")
    parser.add_argument("--host", default=os.environ.get("CONSOLE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("CONSOLE_PORT", "8090")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    url = database_url()
    console = Console(repository_for(url), Accounts(url),
                      RasaClient(os.environ.get("RASA_URL", "http://localhost:5005"), os.environ.get("RASA_AUTH_TOKEN"),
                                 float(os.environ.get("RASA_TIMEOUT", "20"))),
                      secure_cookie=secure_cookie(os.environ))
    create_app(console).run(host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
