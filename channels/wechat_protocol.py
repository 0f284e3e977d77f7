"""WeChat and WeCom wire format as pure functions: signatures, AES envelopes, XML in and out.

Both platforms sign with SHA-1 over the sorted (token, timestamp, nonce[, encrypted]) and,
in safe mode, wrap messages in AES-256-CBC: key = base64(EncodingAESKey + "="), IV = the
key's first 16 bytes, plaintext = 16 random bytes + 4-byte big-endian length + message +
receiver id (AppID or CorpID), PKCS#7-padded to 32 bytes. XML is parsed with defusedxml,
which refuses entity expansion and external entities. No I/O happens here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

MAX_CLOCK_SKEW = 300  # seconds a timestamp may be off before a request counts as a replay
BLOCK = 32


class ProtocolError(Exception):
    """A request that must be refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(expected: str | None, *parts: str) -> None:
    """Refuse (403) unless `expected` is the signature of parts; compared in constant time."""
    if not expected or not hmac.compare_digest(signature(*parts), expected):
        raise ProtocolError(403, "bad signature")


def check_fresh(timestamp: str | None, now: float | None = None) -> None:
    """Refuse (403) a timestamp more than five minutes off: a replayed request."""
    try:
        skew = abs((now or time.time()) - int(timestamp or ""))
    except ValueError:
        raise ProtocolError(403, "bad timestamp") from None
    if skew > MAX_CLOCK_SKEW:
        raise ProtocolError(403, "stale timestamp")


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The children of <xml> as a flat dict; 400 on malformed or hostile XML."""
    try:
        root = ElementTree.fromstring(body, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as error:
        raise ProtocolError(400, f"bad xml: {error.__class__.__name__}") from None
    return {child.tag: (child.text or "") for child in root}


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, timestamp: int | None = None) -> str:
    """A passive text reply to a user message."""
    return (
        f"<xml><ToUserName>{_cdata(to_user)}</ToUserName><FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{timestamp or int(time.time())}</CreateTime><MsgType>{_cdata('text')}</MsgType>"
        f"<Content>{_cdata(content)}</Content></xml>"
    )


@dataclass
class AESEnvelope:
    """Safe-mode encryption for one account (Official Account AppID or WeCom CorpID)."""

    token: str
    encoding_aes_key: str
    receiver_id: str

    def __post_init__(self) -> None:
        self.key = base64.b64decode(self.encoding_aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("EncodingAESKey must be 43 characters of base64 (32 bytes)")

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, random: bytes | None = None) -> str:
        body = message.encode("utf-8")
        plain = (random or os.urandom(16)) + struct.pack(">I", len(body)) + body + self.receiver_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        """The message inside; 400 when it does not decrypt or belongs to another receiver."""
        try:
            decryptor = self._cipher().decryptor()
            plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
            plain = plain[: -plain[-1]] if 0 < plain[-1] <= BLOCK else plain
            length = struct.unpack(">I", plain[16:20])[0]
            message, receiver = plain[20:20 + length], plain[20 + length:]
        except (ValueError, struct.error, IndexError):
            raise ProtocolError(400, "cannot decrypt") from None
        if receiver.decode("utf-8", "replace") != self.receiver_id:
            raise ProtocolError(400, "message for another account")
        return message.decode("utf-8", "replace")

    def open(self, body: bytes, msg_signature: str | None, timestamp: str, nonce: str) -> dict[str, str]:
        """Verify and decrypt a pushed message: outer XML → Encrypt → inner XML."""
        encrypted = parse_xml(body).get("Encrypt")
        if not encrypted:
            raise ProtocolError(400, "no Encrypt element")
        check_signature(msg_signature, self.token, timestamp, nonce, encrypted)
        return parse_xml(self.decrypt(encrypted))

    def seal(self, reply_xml: str, nonce: str, timestamp: int | None = None) -> str:
        """The encrypted, signed envelope for a passive reply."""
        stamp = str(timestamp or int(time.time()))
        encrypted = self.encrypt(reply_xml)
        sig = signature(self.token, stamp, nonce, encrypted)
        return (
            f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt><MsgSignature>{_cdata(sig)}</MsgSignature>"
            f"<TimeStamp>{escape(stamp)}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>"
        )
