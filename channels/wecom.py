"""WeCom (企业微信) self-built app callback, mounted at /webhooks/wecom/webhook.

Same flow as the Official Account (channels/wechat.py) except that WeCom always encrypts:
URL verification decrypts the echostr it is sent (msg_signature over token, timestamp,
nonce and echostr), and every message is an AES envelope signed by msg_signature. The
conversation id is `wecom:<userid>`, in the channel's own namespace.
"""

from __future__ import annotations

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.store import ChannelStore
from channels.wechat import Settings, WeChatInput, WeChatOutput
from channels.wechat_protocol import ProtocolError, check_fresh, check_signature


class WeComOutput(WeChatOutput):
    """Sends through WeCom's message API (staff replies, late answers)."""

    @classmethod
    def name(cls) -> str:
        return "wecom"


class WeComInput(WeChatInput):
    """The WeCom app callback."""

    kind = "wecom"

    @classmethod
    def name(cls) -> str:
        return "wecom"

    SETTINGS = {
        "token": ("token", "WECOM_TOKEN"),
        "app_id": ("corp_id", "WECOM_CORP_ID"),
        "secret": ("secret", "WECOM_SECRET"),
        "encoding_aes_key": ("encoding_aes_key", "WECOM_ENCODING_AES_KEY"),
        "api_base": ("api_base", "WECOM_API_BASE"),
        "agent_id": ("agent_id", "WECOM_AGENT_ID"),
    }
    DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"

    def __init__(self, settings: Settings, store: ChannelStore | None = None) -> None:
        if settings.token and not settings.encoding_aes_key:
            raise ValueError("wecom: WECOM_ENCODING_AES_KEY is not set (WeCom always encrypts)")
        super().__init__(settings, store)

    def get_output_channel(self) -> WeComOutput:
        return WeComOutput(self.api, self.name())

    def verify(self, request: Request) -> HTTPResponse:
        args = request.args
        try:
            check_fresh(args.get("timestamp"))
            echostr = args.get("echostr", "")
            check_signature(args.get("msg_signature"), self.settings.token, args.get("timestamp", ""),
                            args.get("nonce", ""), echostr)
            return response.text(self.envelope.decrypt(echostr))
        except ProtocolError as error:
            return response.text(str(error), status=error.status)

    def open(self, request: Request, body: bytes) -> dict[str, str]:
        args = request.args
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        check_fresh(timestamp)
        return self.envelope.open(body, args.get("msg_signature"), timestamp, nonce)
