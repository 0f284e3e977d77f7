"""Answer units, what a question asks, the unit ranking and the answer chosen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actions import answers, ranker, units
from actions.kb import DEFAULT_DIR
from actions.question import analyse


@pytest.fixture(scope="module")
def all_units() -> list[units.AnswerUnit]:
    return units.load()


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_every_unit_is_an_exact_passage_of_its_source(knowledge_base, all_units) -> None:
    sources = {p.name: squash(p.read_text(encoding="utf-8")) for p in (DEFAULT_DIR / "sources").glob("*.txt")}
    items = {f"{p.doc} 第{p.item}条": squash(p.text) for p in knowledge_base.policies.values()}
    for unit in all_units:
        if unit.kind in ("channel", "contact"):  # a channel's `how` and a contact are kb records, cited
            continue
        # an item's text is the seed's without its page breaks (kb/policies, checked by make kb-validate)
        assert squash(unit.text) in items.get(unit.cite, sources[unit.file]), unit.id


def test_units_cover_every_item_figure_channel_and_article_span(knowledge_base, all_units) -> None:
    ids = {u.id for u in all_units}
    assert set(knowledge_base.policies) <= ids
    assert {f"ch_{c}" for c in knowledge_base.channels} <= ids
    quotes = {(q.file, q.text) for t in knowledge_base.topics.values() for q in t.points}
    assert quotes <= {(u.file, u.text) for u in all_units}
    articles = [u for u in all_units if u.kind == "article"]
    assert {u.file for u in articles} == {"000_a735cdf0da0d77d6.txt", "001_8defed287ef4fb9b.txt",
                                          "004_46eb04ff605228dd.txt"}
    # the unrelated pages of a newspaper stay out
    assert not any("巫溪" in u.text for u in all_units)


def test_units_carry_citation_department_and_aspects(knowledge_base, all_units) -> None:
    by_id = {u.id: u for u in all_units}
    item = by_id["p2023_009"]
    assert item.cite == "渝中府办〔2023〕32号 第9条" and item.lead == ("zhujian",)
    assert "time" in item.aspects and "construction_permit" in item.topics
    [notice] = [u for u in all_units if u.text == "简易注销公告时间由45天压缩到20天"]
    assert notice.cite == "2022年渝中区营商环境报道" and notice.lead == ("scjg",) and "time" in notice.aspects
    assert by_id["contact_yingshangban"].aspects == ("contact",)


def test_the_units_file_is_what_make_kb_writes(knowledge_base) -> None:
    built = units.dumps(units.build(knowledge_base, DEFAULT_DIR / "sources"))
    assert Path(units.UNITS_FILE).read_text(encoding="utf-8") == built


@pytest.mark.parametrize("text, aspects, missing, yesno", [
    ("简易注销公告要公示多少天", ("time",), None, False),
    ("办营业执照要交多少钱", ("cost",), None, False),
    ("首贷续贷中心的电话是多少", ("count",), "phone", False),
    ("专利可以质押贷款吗", (), None, True),
    ("帮帮团首批进了哪几个楼宇", ("list",), None, False),  # which ones (a passage naming them), not how many
    ("区里有哪些银政合作的贷款产品", ("list",), None, False),
    ("政务中心几点上班", (), "hours", False),
    ("How long does it take to register a company?", ("time",), None, False),
    ("注册地址可以用住宅吗", (), None, True),  # an address named as the topic, not asked for
    ("上班族能注册个体户吗", (), None, True),
    ("I am interested in opening a whole new company", (), None, False),  # no rate, no who, no fee
    ("有什么支持政策吗", (), None, False),  # what, not yes or no
    ("政府部门欠我们货款多久都不给", (), None, False),  # a long time, said; not how long
    ("拖了好久了，注销还要多久", ("time",), None, False),
    ("What is the 助企帮帮团 and who is in it?", ("list",), None, False),  # its members, not who leads it
])
def test_what_the_question_asks(text, aspects, missing, yesno) -> None:
    ask = analyse(text)
    assert (ask.aspects, ask.missing, ask.yesno) == (aspects, missing, yesno)


def test_the_topic_first_then_the_rest_of_the_kb(knowledge_base) -> None:
    index = ranker.default()
    text = "一般项目的建筑许可要多少个工作日"
    ranked = index.rank(text, "construction_permit", analyse(text),
                        topic_channels=knowledge_base.topics["construction_permit"].channels)
    assert ranked[0].unit.id == "p2023_009" and ranked[0].prior == ranker.TOPIC_BONUS
    # restricted to the topic, nothing else comes back
    only = index.rank(text, "construction_permit", analyse(text), only_topic=True)
    assert all(r.prior for r in only)


def test_the_passage_is_the_clause_that_answers(all_units) -> None:
    [unit] = [u for u in all_units if u.id == "p2021_016"]
    text = "政府采购有没有专门预留给小微企业的比例"
    passage = ranker.passage(unit, text, analyse(text))
    assert "预留给小微企业的比例不低于60%" in passage and len(passage) <= ranker.MAX_PASSAGE


@pytest.mark.parametrize("topic, text, missing", [
    ("first_loan_renewal", "首贷续贷中心几点下班", "hours"),
    ("credit_loan", "助企贷利率是多少", "rate"),
    ("ip_pledge", "知识产权质押融资要多久能批", "time"),
    ("tax", "电子税务局网址是什么", "url"),
    ("utilities", "商业用电多少钱一度", "price"),  # a tariff: the documents say only what connecting costs
])
def test_what_the_documents_do_not_hold_is_said_to_be_missing(knowledge_base, topic, text, missing) -> None:
    found = answers.answer(knowledge_base, knowledge_base.topics[topic], text)
    assert found.unit is None and found.missing == missing


def test_a_clear_match_answers_a_message_nlu_could_not_place(knowledge_base) -> None:
    found = answers.search(knowledge_base, "企业信用码区里要推广到多少户")
    assert found is not None and "2000 户" in found.passage
    assert answers.search(knowledge_base, "今天重庆会下雨不") is None
    assert answers.search(knowledge_base, "哪个牌子的手机拍照好") is None


def test_the_likeliest_topic_answers_when_its_unit_matches_clearly(knowledge_base) -> None:
    # NLU put these below its threshold, with the right topic first
    found = answers.on_likeliest(knowledge_base, knowledge_base.topics["company_opening"], "在渝中开公司 最快多久能全部弄完")
    assert found is not None and "0.5天" in found.passage
    # words that barely touch the topic's units are asked back, not answered
    assert answers.on_likeliest(knowledge_base, knowledge_base.topics["ip_protection"], "哪个牌子的手机拍照好") is None
    assert answers.on_likeliest(knowledge_base, knowledge_base.topics["chuanyu_tongban"], "今天重庆会下雨不") is None


def test_article_sentences_are_whole_sentences(all_units) -> None:
    articles = [u for u in all_units if u.kind == "article"]
    assert all(u.text[-1] in "。！？!?”’」』" and u.text[0] not in "”’」』" for u in articles)
    # a paragraph the newspaper broke across lines is one unit; bylines and captions are none
    assert any("后续监管制度" in u.text for u in articles)
    assert not any(u.text.startswith(("图片由", "詹米璐")) for u in articles)
    assert all(not u.lead for u in articles)  # the routed topic's lead answers for an article


def test_a_sentence_of_two_time_limits_is_one_unit_per_limit() -> None:
    sentence = "用水报装全流程办理时限不超过8个工作日，用气报装全流程办理时限不超过10个工作日（不含外线工程施工时间）。"
    assert units.fact_clauses(sentence) == ["用水报装全流程办理时限不超过8个工作日",
                                            "用气报装全流程办理时限不超过10个工作日（不含外线工程施工时间）。"]
    # the clauses after a limit stay with it; a sentence of one limit stays whole
    assert units.fact_clauses("获得用电低压小微用户全流程总用时不超过 8 个工作日, 其中, 涉及需要开挖占绿的, "
                              "备案办理用时不超过 2 日(含现场踏勘); 10 千伏城镇用户全流程平均用时不超过 30 个工作日。")[0] \
        .endswith("备案办理用时不超过 2 日(含现场踏勘)")
    assert units.fact_clauses("失业补助金申领不超过1个工作日。") == ["失业补助金申领不超过1个工作日。"]


@pytest.mark.parametrize("topic, text, fact, lead", [
    # the 2023 list's 10 个工作日 replaces the 2021 plan's 13 for gas
    ("utilities", "饭店要接天然气，要等好久", "用气报装全流程办理时限不超过10个工作日", "jingxin"),
    # a policy item names its own lead: 招商回访 is 区招商局's on a topic 区发展改革委 leads
    # (either clause of 第52条 answers: 建立…回访服务机制, 全覆盖回访服务…)
    ("enterprise_policy", "我们是招商引进来的企业，落地以后政府还会回访吗", "回访服务", "zhaoshang"),
    # 「在哪」: the channel in the documents' words, cited to its item
    ("tax_dispute", "税费争议可以找哪里调解", "设立涉税费争议调解室", "shuiwu"),
])
def test_the_answer_and_its_department(knowledge_base, topic, text, fact, lead) -> None:
    found = answers.answer(knowledge_base, knowledge_base.topics[topic], text, text)
    assert fact in found.passage and found.department.id == lead
    assert re.search(r"第\d+条$", found.unit.cite)


def test_an_english_question_is_searched_in_its_own_words(knowledge_base) -> None:
    typed = "Can I pay my Chinese taxes from abroad in RMB?"
    # the normalizer reduces it to the topic's term; the question's own words find the item
    found = answers.answer(knowledge_base, knowledge_base.topics["tax"], "税务", typed)
    assert "人民币跨境缴纳税款" in found.passage
    assert "人民币跨境缴纳税款" not in answers.answer(knowledge_base, knowledge_base.topics["tax"], "税务").passage


def test_a_named_departments_contact_or_that_none_is_published(knowledge_base) -> None:
    entities = [{"entity": "department", "value": "yingshangban"}]
    found = answers.for_department(knowledge_base, "营商办电话多少嘛，我要反映个事情", entities=entities,
                                   fallback_topic=knowledge_base.topics["enterprise_policy"])
    assert found is not None and "63765360" in found.passage
    found = answers.for_department(knowledge_base, "渝中区市场监管局局长叫什么名字",
                                   entities=[{"entity": "department", "value": "scjg"}])
    assert found is not None and found.unit is None and found.missing == "person"
    assert found.subject == "区市场监管局"
    # no department named, or nothing asked that the documents lack: not this path
    assert answers.for_department(knowledge_base, "电话多少", entities=[]) is None
    assert answers.for_department(knowledge_base, "营商办是干什么的", entities=entities) is None


@pytest.mark.parametrize("text, names_several", [
    ("首批进驻重庆环球金融中心、大都会、龙湖重庆时代天街等楼宇", True),
    ("由29个区级部门、6个管委会和11个街道的企业服务专员构成", True),
    ("提供“复工贷”“健康云贷”“银票质押贷”等普惠金融产品", True),
    ("推动教育、医疗融合发展", False),  # two are a pair, not a list
    ("营业执照受理审核时间压减到2小时以内", False),
])
def test_a_passage_naming_several_answers_which_ones(text, names_several) -> None:
    assert ("list" in units.aspects_of(text)) is names_several


def test_who_answers_with_the_lead_line_or_the_passage_on_what_was_said(knowledge_base) -> None:
    topic = knowledge_base.topics["labour_dispute"]
    plain = answers.answer(knowledge_base, topic, "劳动争议找哪个部门")
    assert plain.quote and "牵头单位：区人力社保局" in plain.passage
    # the story says what it is about (a complaint): the item on complaints, its lead the same
    told = answers.answer(knowledge_base, topic, "找哪个部门", context="员工说我们拖欠工资 要去投诉", only_topic=True)
    assert told.quote and "劳动举报投诉" in told.passage and told.department.id == "renshe"
    # no word in common with the item (一对一帮 / 「一企一策」精准帮扶), but BM25 settles on it: that item
    helped = answers.answer(knowledge_base, knowledge_base.topics["foreign_trade"], "外贸企业碰到困难找哪个，有没得一对一帮扶的")
    assert "一企一策" in helped.passage and helped.department.id == "shangwu"
    plain_trade = answers.answer(knowledge_base, knowledge_base.topics["foreign_trade"], "外贸的事找哪个部门")
    assert "牵头单位：区商务委" in plain_trade.passage


def test_a_question_about_now_gets_the_newest_documents_figure(knowledge_base) -> None:
    topic = knowledge_base.topics["chuanyu_tongban"]
    # the 2024 report's count, not the 2021 plan's target for that year
    now = answers.answer(knowledge_base, topic, "跨省通办现在能办多少项")
    assert "140项" in now.passage
    planned = answers.answer(knowledge_base, topic, "2021年计划多少项高频事项实现跨省通办")
    assert "74 项" in planned.passage
    assert analyse("How many items can be handled now?").now and not analyse("Do you know how long it takes?").now


def test_an_english_question_nlu_could_not_place_is_searched_through_the_glossary(knowledge_base) -> None:
    from components.text_normalizer import TextNormalizer

    normalize = TextNormalizer.from_lexicon(Path(__file__).resolve().parents[2] / "lexicon").normalize
    asked = "How many days does it take to register unemployment for a laid-off employee?"
    found = answers.search(knowledge_base, normalize(asked), asked)
    assert found is not None and "失业登记" in found.passage
    # a recognised word or two is no clear match: a restaurant near 解放碑 is not an item on 解放碑商圈
    for stray in ("Can you recommend a good hotpot restaurant near Jiefangbei?", "Which phone brand has the best camera?"):
        assert answers.search(knowledge_base, normalize(stray), stray) is None


def test_a_passage_found_off_the_routed_topic_answers_for_its_own(knowledge_base) -> None:
    # NLU routes the count to 外商投资 (区发展改革委); the article's sentence belongs to 集群注册
    found = answers.answer(knowledge_base, knowledge_base.topics["foreign_investment"], "集群注册的企业现在一共有好多户")
    assert "集群注册企业1100余户" in found.passage
    assert found.department.id == "scjg"
    assert found.channel.id in knowledge_base.topics["cluster_registration"].channels


def test_english_synonyms_match_the_plural_but_not_inside_words() -> None:
    assert "回访" in ranker.expanded("Does the district do follow-up visits?")
    assert "回访" in ranker.expanded("a follow-up visit")
    assert "回访" not in ranker.expanded("follow-up visitors")


def test_an_english_question_is_ranked_by_its_own_words_unless_the_synonyms_know_none(knowledge_base) -> None:
    """The normalizer's terms route (「office」 → 注册地址, 「set up」 → 开公司) but mislead the
    ranking; search_synonyms.yml's serve when they know a word, the normalizer's when not (「bus」)."""
    from components.text_normalizer import TextNormalizer

    normalize = TextNormalizer.from_lexicon(Path(__file__).resolve().parents[2] / "lexicon").normalize
    visits = "Now that our regional office is open, does the district pay follow-up visits?"
    found = answers.answer(knowledge_base, knowledge_base.topics["company_opening"], normalize(visits), visits)
    assert "回访" in found.passage
    bus = "Will there be more bus routes for commuters in Yuzhong?"
    found = answers.answer(knowledge_base, knowledge_base.topics["inclusive_services"], normalize(bus), bus)
    assert "公交" in found.passage
