"""The one access layer to the knowledge base in kb/.

Everything the assistant states about departments, policy items, channels and figures is
read here from the YAML files, each fact with the source it was taken from. Actions,
the build script and the validator use these types; nothing else parses kb/.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "kb"


@dataclass(frozen=True)
class Document:
    """A seed document; `cite` is how answers name it."""

    file: str
    kind: str
    year: int
    title: str
    cite: str
    doc: str | None = None
    # articles: the passages about Yuzhong's services ({from: line start, to: line start})
    spans: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Department:
    """A unit the documents name: a district department, a court, a utility, a group."""

    id: str
    name: str
    kind: str
    aliases: tuple[str, ...]
    source: dict[str, str]
    full_name: str | None = None
    contact: dict[str, str] | None = None

    @property
    def display(self) -> str:
        """`区市场监管局（渝中区市场监督管理局）` where the documents give a full name."""
        return f"{self.name}（{self.full_name}）" if self.full_name else self.name


@dataclass(frozen=True)
class Policy:
    """One numbered item of a policy document."""

    id: str
    doc: str
    year: int
    item: int
    category: str
    text: str
    lead: tuple[str, ...]
    co: tuple[str, ...]
    source: dict[str, str]
    title: str | None = None
    part: str | None = None


@dataclass(frozen=True)
class Quote:
    """An exact passage of a seed document, with where it stands."""

    text: str
    file: str
    ref: str
    policy: str | None = None
    about: tuple[str, ...] = ()


@dataclass(frozen=True)
class Channel:
    """A platform, window, centre, station or system a business can use."""

    id: str
    name: str
    kind: str
    aliases: tuple[str, ...]
    how: str
    points: tuple[Quote, ...]
    source: dict[str, str]
    operator: str | None = None


@dataclass(frozen=True)
class Product:
    """A financing product the documents name (no rates or amounts: they give none)."""

    id: str
    name: str
    aliases: tuple[str, ...]
    points: tuple[Quote, ...]


@dataclass(frozen=True)
class Topic:
    """A question area routed to lead department, policy items and channels."""

    id: str
    title: str
    lead: tuple[str, ...]
    co: tuple[str, ...]
    policies: tuple[Quote, ...]
    points: tuple[Quote, ...]
    channels: tuple[str, ...]
    products: tuple[str, ...]
    keywords: tuple[str, ...]
    lead_source: Quote | None = None
    # a dispute or a case needing a decision: after the answer, hand over to a specialist
    needs_person: bool = False


@dataclass
class KnowledgeBase:
    """All records, indexed by id, with the alias tables NLU output is mapped through."""

    documents: dict[str, Document]
    departments: dict[str, Department]
    policies: dict[str, Policy]
    channels: dict[str, Channel]
    products: dict[str, Product]
    topics: dict[str, Topic]
    version: str = ""  # digest of the files it was read from (`content_version`): what it knew
    _topic_of_channel: dict[str, str] = field(default_factory=dict)
    _topic_of_product: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for topic in self.topics.values():
            for channel in topic.channels:
                self._topic_of_channel.setdefault(channel, topic.id)
            for product in topic.products:
                self._topic_of_product.setdefault(product, topic.id)

    def topic(self, topic_id: str | None) -> Topic | None:
        return self.topics.get(topic_id) if topic_id else None

    def topic_for_entity(self, entity: str, value: str) -> str | None:
        """The topic an entity points at: a topic id, or the first topic using a channel/product."""
        if entity == "topic":
            return value if value in self.topics else None
        if entity == "channel":
            return self._topic_of_channel.get(value)
        if entity == "product":
            return self._topic_of_product.get(value)
        return None

    def cite(self, quote: Quote) -> str:
        """`渝中府办〔2023〕32号 第2条` for an item, `2022年渝中区营商环境报道` for an article."""
        if quote.policy:
            policy = self.policies[quote.policy]
            return f"{policy.doc} 第{policy.item}条"
        return self.documents[quote.file].cite

    def units(self, ids: tuple[str, ...]) -> list[Department]:
        return [self.departments[i] for i in ids]

    def lead_of(self, topic: Topic) -> list[Department]:
        return self.units(topic.lead)

    def co_of(self, topic: Topic) -> list[Department]:
        """Named co-responsible units; the first item's 责任单位 when the topic names none."""
        if topic.co:
            return self.units(topic.co)
        if topic.policies and topic.policies[0].policy:
            co = self.policies[topic.policies[0].policy].co
            return [d for d in self.units(co) if d.id not in topic.lead]
        return []


QUOTE_KEYS = {"id", "policy", "file", "ref", "quote", "about"}


def _quote(raw: dict[str, Any], policies: dict[str, Any]) -> Quote:
    """Build a Quote from `{policy|id: …, quote: …}` or `{file: …, ref: …, quote: …}`.

    Unknown keys are an error: in a YAML flow mapping an unquoted half-width comma inside
    a quote silently ends it, and the rest turns into a stray key.
    """
    stray = set(raw) - QUOTE_KEYS
    if stray:
        raise KeyError(f"unexpected keys {sorted(stray)} in quote {raw.get('quote')!r}: quote the text")
    policy_id = raw.get("policy") or raw.get("id")
    about = tuple(raw.get("about", ()))
    if policy_id:
        source = policies[policy_id]["source"] if policy_id in policies else {}
        return Quote(raw["quote"], source.get("file", ""), source.get("ref", ""), policy_id, about)
    return Quote(raw["quote"], raw["file"], raw.get("ref", ""), None, about)


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load(directory: Path | str = DEFAULT_DIR) -> KnowledgeBase:
    """Read every kb/ file; raises KeyError/TypeError on a malformed record."""
    root = Path(directory)
    raw_policies: dict[str, Any] = {}
    for path in sorted((root / "policies").glob("*.yml")):
        for record in _read(path)["policies"]:
            raw_policies[record["id"]] = record
    policies = {
        pid: Policy(
            id=pid, doc=r["doc"], year=r["year"], item=r["item"], category=r["category"],
            text=r["text"], lead=tuple(r["lead"]), co=tuple(r.get("co", [])),
            source=r["source"], title=r.get("title"), part=r.get("part"),
        )
        for pid, r in raw_policies.items()
    }
    documents = {
        d["file"]: Document(**{**d, "spans": tuple(d.get("spans", ()))})
        for d in _drop(_read(root / "documents.yml")["documents"], "items")
    }
    departments = {
        d["id"]: Department(
            id=d["id"], name=d["name"], kind=d["kind"], aliases=tuple(d.get("aliases", [])),
            source=d["source"], full_name=d.get("full_name"), contact=d.get("contact"),
        )
        for d in _read(root / "departments.yml")["departments"]
    }
    channels = {
        c["id"]: Channel(
            id=c["id"], name=c["name"], kind=c["kind"], aliases=tuple(c.get("aliases", [])),
            how=c["how"], points=tuple(_quote(q, raw_policies) for q in c.get("points", [])),
            source=c["source"], operator=c.get("operator"),
        )
        for c in _read(root / "channels.yml")["channels"]
    }
    products = {
        p["id"]: Product(
            id=p["id"], name=p["name"], aliases=tuple(p.get("aliases", [])),
            points=tuple(_quote(q, raw_policies) for q in p.get("points", [])),
        )
        for p in _read(root / "products.yml")["products"]
    }
    topics = {
        t["id"]: Topic(
            id=t["id"], title=t["title"], lead=tuple(t["lead"]), co=tuple(t.get("co", [])),
            policies=tuple(_quote(q, raw_policies) for q in t.get("policies", [])),
            points=tuple(_quote(q, raw_policies) for q in t.get("points", [])),
            channels=tuple(t.get("channels", [])), products=tuple(t.get("products", [])),
            keywords=tuple(t.get("keywords", [])),
            lead_source=_quote(t["lead_source"], raw_policies) if t.get("lead_source") else None,
            needs_person=bool(t.get("needs_person", False)),
        )
        for t in _read(root / "topics.yml")["topics"]
    }
    return KnowledgeBase(documents, departments, policies, channels, products, topics,
                         version=content_version(root))


def content_version(root: Path) -> str:
    """12 hex digits of sha256 over the kb/ files an answer can come from (records, sources,
    answer units): each turn's card carries it, so an answer traces to what was known then."""
    digest = hashlib.sha256()
    files = [*root.glob("*.yml"), *(root / "policies").glob("*.yml"), *(root / "sources").glob("*"),
             *(root / "generated").glob("*.json")]
    for path in sorted(p for p in files if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _drop(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != key} for r in records]


def served_dir() -> Path:
    """The folder the actions serve: $KB_DIR or the repository's kb/."""
    return Path(os.environ.get("KB_DIR", DEFAULT_DIR))


@functools.lru_cache(maxsize=1)
def default() -> KnowledgeBase:
    """The knowledge base the actions serve, from $KB_DIR or the repository's kb/."""
    return load(served_dir())
