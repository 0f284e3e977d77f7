"""The WeChat / WeCom customer-service message API, behind one small client.

Used when an answer misses the 5-second passive-reply window, and for staff replies. The
access token is fetched in one place and kept in the shared store (ChannelStore), so every
process uses the same one; an answer of 40001/40014/42001 (invalid or expired token) drops it,
fetches a new one and retries once. Outgoing calls use `requests` with timeouts and retries on
connection errors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from channels.store import ChannelStore

logger = logging.getLogger(__name__)
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential / invalid token / expired token
# errors that mean the user can no longer be reached (customer-service window closed)
OUT_OF_WINDOW = {45015, 45047}
TIMEOUT = (3.05, 10)
REFRESH_MARGIN = 300  # seconds before expiry a token is no longer used


class DeliveryError(Exception):
    """The API refused the message; `code` is its errcode (45015: the user is out of reach)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code

    @property
    def out_of_window(self) -> bool:
        return self.code in OUT_OF_WINDOW


def _session() -> requests.Session:
    session = requests.Session()
    # connection errors are retried for every call (nothing was sent); read errors and 5xx
    # only for GET: a message POST that timed out may have been delivered already
    retry = Retry(total=3, connect=3, read=1, backoff_factor=0.3, status_forcelist=(502, 503, 504),
                  allowed_methods=frozenset({"GET"}))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


@dataclass
class CustomerServiceAPI:
    """One account's API: Official Account (kind 'wechat') or WeCom app (kind 'wecom')."""

    kind: str
    base_url: str
    app_id: str
    secret: str
    store: ChannelStore
    agent_id: str = ""

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session = _session()

    @property
    def _token_name(self) -> str:
        return f"{self.kind}:{self.app_id}:{self.agent_id}"

    def access_token(self) -> str:
        token = self.store.token(self._token_name)
        if token:
            return token
        if self.kind == "wecom":
            url, params = f"{self.base_url}/cgi-bin/gettoken", {"corpid": self.app_id, "corpsecret": self.secret}
        else:
            url = f"{self.base_url}/cgi-bin/token"
            params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret}
        answer = self.session.get(url, params=params, timeout=TIMEOUT).json()
        if "access_token" not in answer:
            raise DeliveryError(int(answer.get("errcode", -1)), answer.get("errmsg", "no token"))
        expires_at = time.time() + int(answer.get("expires_in", 7200)) - REFRESH_MARGIN
        self.store.save_token(self._token_name, answer["access_token"], expires_at)
        return answer["access_token"]

    def _body(self, user_id: str, text: str) -> dict[str, Any]:
        if self.kind == "wecom":
            return {"touser": user_id, "msgtype": "text", "agentid": int(self.agent_id or 0), "text": {"content": text}}
        return {"touser": user_id, "msgtype": "text", "text": {"content": text}}

    def send_text(self, user_id: str, text: str) -> None:
        """Send one text message; refresh the token once on 40001/42001."""
        path = "/cgi-bin/message/send" if self.kind == "wecom" else "/cgi-bin/message/custom/send"
        for attempt in (1, 2):
            token = self.access_token()
            answer = self.session.post(f"{self.base_url}{path}", params={"access_token": token},
                                       json=self._body(user_id, text), timeout=TIMEOUT).json()
            code = int(answer.get("errcode", 0))
            if code == 0:
                return
            if code in TOKEN_ERRORS and attempt == 1:
                self.store.drop_token(self._token_name, token)
                continue
            raise DeliveryError(code, answer.get("errmsg", ""))
