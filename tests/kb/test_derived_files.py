"""Files derived from kb/ are current and carry every name, alias and keyword."""

from __future__ import annotations

import yaml

from scripts import build_kb


def test_committed_derived_files_are_current(knowledge_base) -> None:
    for path, text in build_kb.outputs(knowledge_base).items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run make kb"


def test_lookups_cover_every_topic_and_entity(knowledge_base) -> None:
    data = yaml.safe_load(build_kb.lookups(knowledge_base))
    names = {entry["lookup"] for entry in data["nlu"]}
    assert {"department", "channel", "product"} <= names
    assert {f"topic_{t}" for t in knowledge_base.topics} <= names


def test_synonyms_map_every_alias_to_its_id(knowledge_base) -> None:
    data = yaml.safe_load(build_kb.synonyms(knowledge_base))
    mapping = {line[2:]: entry["synonym"] for entry in data["nlu"]
               for line in entry["examples"].splitlines() if line.strip()}
    assert mapping["市监局"] == "scjg"
    assert mapping["续贷中心"] == "shoudai_xudai_zhongxin"
    assert mapping["助企贷"] == "zhuqidai"


def test_adding_an_alias_reaches_every_derived_file(knowledge_base) -> None:
    from dataclasses import replace

    scjg = knowledge_base.departments["scjg"]
    edited = replace(knowledge_base, departments={**knowledge_base.departments,
                                                  "scjg": replace(scjg, aliases=(*scjg.aliases, "市场局老大"))})
    assert "市场局老大" in build_kb.lookups(edited)
    assert "市场局老大" in build_kb.synonyms(edited)
    assert "市场局老大 " in build_kb.jieba_dictionary(edited)


def test_every_topic_has_a_rule(knowledge_base) -> None:
    rules = yaml.safe_load(build_kb.topic_rules(knowledge_base))["rules"]
    assert {r["steps"][0]["intent"] for r in rules} == set(knowledge_base.topics)
    assert all(r["steps"][1]["action"] == "action_answer_topic" for r in rules)
