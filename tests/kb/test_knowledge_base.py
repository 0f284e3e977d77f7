"""The knowledge base is sound, complete and sourced; the validator catches what breaks it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actions import kb
from scripts import validate_kb

ROOT = Path(__file__).resolve().parents[2]
SHARED_SEEDS = ROOT.parent / "shared" / "seeds"


def test_committed_kb_has_no_problems() -> None:
    assert validate_kb.problems() == []


@pytest.mark.parametrize("doc, count", [("渝中府办〔2021〕16号", 52), ("渝中府办〔2023〕32号", 90)])
def test_every_numbered_item_is_there(knowledge_base: kb.KnowledgeBase, doc: str, count: int) -> None:
    items = sorted(p.item for p in knowledge_base.policies.values() if p.doc == doc)
    assert items == list(range(1, count + 1))


@pytest.mark.parametrize("pid, lead, co_has", [
    ("p2023_002", ["scjg"], "zhujian"),          # 市场准入
    ("p2023_020", ["jingxin", "chengguan"], "zilaishui"),  # 报装
    ("p2023_062", ["scjg"], "jinrong"),         # 知识产权
    ("p2023_045", ["shuiwu", "caizheng"], None),  # 纳税: two leads, no 责任单位
    ("p2021_011", ["jinrong"], "qu_xiangguan_bumen"),  # …等相关部门
    ("p2021_020", ["fagai"], "shangwu"),        # section header split by a page break
    ("p2021_052", ["zhaoshang"], "jiedao"),     # item naming its own units
])
def test_lead_and_co_units_follow_the_document(knowledge_base, pid, lead, co_has) -> None:
    policy = knowledge_base.policies[pid]
    assert list(policy.lead) == lead
    if co_has:
        assert co_has in policy.co
    else:
        assert policy.co == ()


def test_policy_texts_carry_no_page_furniture(knowledge_base: kb.KnowledgeBase) -> None:
    for policy in knowledge_base.policies.values():
        assert "人民政府行政规范性文件" not in policy.text and "##" not in policy.text, policy.id


def test_sources_are_the_shared_seeds() -> None:
    if not SHARED_SEEDS.is_dir():
        pytest.skip("shared/seeds is not beside this checkout")
    for seed in SHARED_SEEDS.glob("*.txt"):
        assert (ROOT / "kb" / "sources" / seed.name).read_bytes() == seed.read_bytes(), seed.name


def test_extraction_is_reproducible() -> None:
    from scripts import extract_policies

    import sys
    argv, sys.argv = sys.argv, ["extract_policies.py", "--check"]
    try:
        assert extract_policies.main() == 0
    finally:
        sys.argv = argv


def test_every_topic_routes_to_an_existing_lead_with_a_cited_source(knowledge_base) -> None:
    for topic in knowledge_base.topics.values():
        assert topic.lead and all(u in knowledge_base.departments for u in topic.lead)
        assert topic.policies or topic.lead_source, topic.id
        assert topic.channels, topic.id


def test_contact_comes_from_the_seed_document(knowledge_base) -> None:
    office = [d for d in knowledge_base.departments.values() if d.contact]
    assert [d.id for d in office] == ["yingshangban"]
    seed = (ROOT / "kb" / "sources" / office[0].source["file"]).read_text(encoding="utf-8")
    assert office[0].contact["phone"] in seed and office[0].contact["email"] in seed


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("file, old, new, expected", [
    # an invented time limit in a quote
    ("topics.yml", "全流程办理时限压减至0.5天", "全流程办理时限压减至0.3天", "quote not in p2023_002"),
    # an invented figure in an article quote
    ("channels.yml", "等10家银行入驻", "等12家银行入驻", "quote not in 001_"),
    # a unit that does not exist
    ("topics.yml", "lead: [jinrong]\n  co: [caizheng, scjg]", "lead: [jinrongju]\n  co: [caizheng, scjg]", "unknown unit jinrongju"),
    # a lead that is not the first item's lead unit
    ("topics.yml", "- id: tax_dispute\n  title: 税费争议\n  lead: [shuiwu]", "- id: tax_dispute\n  title: 税费争议\n  lead: [renshe]", "is not the lead of p2023_045"),
    # the same alias for two departments
    ("departments.yml", "aliases: [财政局, 财政]", "aliases: [财政局, 财政, 税务局]", "names both"),
    # a figure in a channel description that no source gives
    ("channels.yml", "how: 由专业调解团队调解税费争议", "how: 由专业调解团队在3个工作日内调解税费争议", "figure 3 in `how`"),
    # an unquoted half-width comma that would cut a quote short
    ("topics.yml", "quote: '依托信用体系建设,探索“容缺后补”的审批机制'", "quote: 依托信用体系建设,探索“容缺后补”的审批机制", "unexpected keys"),
    # a policy text edited away from the source
    ("policies/2023.yml", "用水报装全流程办理时限不超过8个工作日", "用水报装全流程办理时限不超过5个工作日", "text is not the source's text"),
])
def test_validator_catches(mini_kb: Path, file: str, old: str, new: str, expected: str) -> None:
    _edit(mini_kb / file, old, new)
    found = validate_kb.problems(mini_kb)
    assert any(expected in line for line in found), found


def test_validator_catches_a_missing_item(mini_kb: Path) -> None:
    path = mini_kb / "policies" / "2023.yml"
    text = path.read_text(encoding="utf-8")
    start = text.index("- id: p2023_090")
    path.write_text(text[:start], encoding="utf-8")
    found = validate_kb.problems(mini_kb)
    assert any("expected 1..90" in line for line in found), found


def test_no_phone_number_url_or_address_outside_the_sources(knowledge_base) -> None:
    """Contacts only where a seed publishes them: the one office contact, nothing else."""
    texts = [c.how for c in knowledge_base.channels.values()]
    texts += [q.text for t in knowledge_base.topics.values() for q in (*t.policies, *t.points)]
    for text in texts:
        assert not re.search(r"https?://|www\.", text), text
        for number in re.findall(r"\d{7,}", text):
            assert number == "63765360", text


def test_the_kb_version_names_what_was_known(tmp_path) -> None:
    """Every card carries it (insight traces an answer to it): the same files give the same
    version, a changed source gives another."""
    import shutil

    from actions import kb as kb_module
    from actions.render import card

    copy = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", copy)
    served = kb_module.load(ROOT / "kb")
    assert len(served.version) == 12 and kb_module.load(copy).version == served.version
    source = next((copy / "sources").glob("*.txt"))
    source.write_text(source.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert kb_module.load(copy).version != served.version
    topic = next(iter(served.topics.values()))
    assert card(served, topic)["kb_version"] == served.version
