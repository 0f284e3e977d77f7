"""Start the action server privately: python -m actions.server [--host H] [--port P].

`rasa run actions` (and `python -m rasa_sdk`) listens on 0.0.0.0, or whatever $SANIC_HOST
says, and runs any action for anyone. This launcher builds the same app with rasa-sdk's
`create_app`, puts the secret check of actions/secret.py in front of every route but
`/health` (401, no action run), turns rasa-sdk's default CORS `*` off unless --cors asks (only Rasa
calls it, never a browser) and listens on --host: 127.0.0.1 by default and under `make run`, the
compose network in Docker (docker/Dockerfile.actions). It will not start without
$ACTIONS_SECRET. Every other option is rasa-sdk's own (`--actions`, `--ssl-*`, logging).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import types

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app as create_sdk_app
from rasa_sdk.endpoint import create_argument_parser, create_ssl_context
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from actions import secret as secret_module

logger = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"


def create_app(secret: str, actions: str | types.ModuleType = "actions", cors_origins: list[str] | None = None,
               auto_reload: bool = False) -> Sanic:
    """rasa-sdk's action server app that answers only `/health` to a caller without the secret.

    Raises:
        ValueError: the secret is unset or too weak (actions/secret.py `checked`).
    """
    secret = secret_module.checked(secret)
    app = create_sdk_app(actions, cors_origins=cors_origins, auto_reload=auto_reload)

    async def require_secret(request: Request) -> HTTPResponse | None:
        if secret_module.allowed(request.path, request.headers, secret):
            return None
        logger.warning("refused %s %s from %s: no valid secret", request.method, request.path[:100], request.ip)
        return response.json({"error": "unauthorized"}, status=401,
                             headers={"WWW-Authenticate": secret_module.SCHEME})

    app.register_middleware(require_secret, "request")
    return app


def argument_parser() -> argparse.ArgumentParser:
    """rasa-sdk's own options plus --host, which rasa-sdk's command line does not have."""
    parser = create_argument_parser()
    parser.prog = "python -m actions.server"
    parser.set_defaults(actions="actions")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    return parser


def warm_up() -> None:
    """Load what the first answer would (the KB, the answer-unit index, jieba's dictionary)
    before listening: a restarted action server's first call took over 2 s of Rasa's
    action timeout (rasa_patches.py) on a busy machine."""
    from actions import answers, kb

    knowledge_base = kb.default()
    topic = next(iter(knowledge_base.topics.values()))
    answers.answer(knowledge_base, topic, "开公司要多久")


def main(argv: list[str] | None = None) -> None:
    args = argument_parser().parse_args(argv)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file, args.loglevel,
                                 args.logging_config_file)
    utils.update_sanic_log_level()
    try:
        app = create_app(os.environ.get(secret_module.SECRET_ENV, ""), args.actions, args.cors, args.auto_reload)
    except ValueError as refused:
        sys.exit(f"action server not started: {refused}")
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    logger.info("action server on %s://%s:%s (secret required)", "https" if ssl_context else "http", args.host,
                args.port)
    warm_up()
    app.run(args.host, args.port, ssl=ssl_context, workers=utils.number_of_sanic_workers())


if __name__ == "__main__":
    main()
