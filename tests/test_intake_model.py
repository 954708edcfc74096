"""The learned intake on statements the corpus does not contain (the misses of issue 13),
the rules on top of it, and what a draft records about the model."""

from __future__ import annotations

from functools import cache

import pytest

from ivr.config import Settings, load_config
from ivr.intake.analyze import Analysis, analyze
from ivr.intake.corpus import corpus_files, load_corpus
from ivr.intake.noise import HomophoneChannel
from ivr.intake.rules import matcher

from .conftest import ROOT

pytestmark = pytest.mark.skipif(not corpus_files(), reason="no intake corpus shipped")


@cache
def _settings() -> Settings:
    return load_config(ROOT / "config.yaml", env={})


def _draft(text: str) -> Analysis:
    cfg = _settings()
    line = cfg.line(cfg.hotline)
    assert line is not None
    return analyze(cfg, text, line=line)


def test_statements_below_are_not_in_the_corpus() -> None:
    corpus = "\n".join(e.text for e in load_corpus())
    for text, *_ in ROUTED + EMERGENCIES + IN_SCOPE:
        assert text not in corpus


# (statement, category, departments that handle it)
ROUTED = [
    (
        "我们楼下那个工地天天晚上十二点还在打桩吵得根本睡不着",
        "投诉",
        {"住房和城乡建设局", "城市管理综合执法局"},
    ),
    ("小区对面那家KTV每天唱到凌晨两三点吵死人了", "投诉", {"公安局", "文化和旅游局"}),
    ("我家门口的下水道堵住了污水漫出来了麻烦派人来通一下", "求助", {"水务局"}),
    (
        "昨晚下大雨把我们官渡区那个村口的路冲垮了车子过不去",
        "求助",
        {
            "住房和城乡建设局",
            "交通运输局",
            *(f"{d}区人民政府" for d in ["五华", "盘龙", "官渡", "西山", "呈贡"]),
        },
    ),
    ("我们巷子口的路灯坏掉好几天了晚上黑麻麻嘞走路都看不见", "求助", {"城市管理综合执法局"}),
    ("我买的那台空调坏了才用了三个月商家说不给保修", "投诉", {"市场监督管理局"}),
    ("孩子明年上小学想问一下入学要准备哪些材料", "咨询", {"教育体育局"}),
    ("买房子的契税怎么交", "咨询", {"税务局"}),
    ("有个厂子偷偷摸摸往河里排黑水", "举报", {"生态环境局"}),
]


@pytest.mark.parametrize(("text", "category", "departments"), ROUTED)
def test_misses_of_the_keyword_lists_are_drafted_right(
    text: str, category: str, departments: set[str]
) -> None:
    result = _draft(text)
    assert result.category == category
    assert result.department in departments
    assert result.scope is None


def test_washed_out_road_is_urgent() -> None:
    assert _draft("昨晚下大雨把我们官渡区那个村口的路冲垮了车子过不去").urgent


# (statement, emergency rule)
EMERGENCIES = [
    ("楼下两个人打起来了一个头上都是血", "警情"),
    ("我爸在家里晕倒了叫不醒", "急救"),
    ("我家五岁的娃娃在公园走丢了", "警情"),
]


@pytest.mark.parametrize(("text", "rule"), EMERGENCIES)
def test_emergencies_are_flagged_and_urgent(text: str, rule: str) -> None:
    result = _draft(text)
    assert result.scope is not None
    assert (result.scope.kind, result.scope.rule) == ("emergency", rule)
    assert result.urgent


IN_SCOPE = [
    ("我爸是退伍军人想问一下优抚金怎么领", "退役军人事务局"),
    ("中级法院门口那盏路灯晚上一直不亮", "城市管理综合执法局"),
    ("检察院旁边那个公交站的站牌被风吹倒了", "交通运输局"),
    ("我不想上访就是想问一下低保怎么申请", "民政局"),
    ("上次你们说的那个仲裁我还是不懂", None),
    ("不是着火是烟囱冒烟", None),
    ("我想表扬一下公交车司机师傅上次有乘客晕倒他马上送医院了", "交通运输局"),
]


@pytest.mark.parametrize(("text", "department"), IN_SCOPE)
def test_trigger_words_that_are_not_the_matter(text: str, department: str | None) -> None:
    result = _draft(text)
    assert result.scope is None
    if department is not None:
        assert result.department == department
    assert not (result.category == "表扬" and result.urgent)


def test_praise_after_a_collapse_is_not_urgent() -> None:
    assert not _draft("我想表扬一下公交车司机师傅上次有乘客晕倒他马上送医院了").urgent


# -- the rules, on the configured words (no model) -------------------------------


@pytest.mark.parametrize(
    ("text", "keyword", "found"),
    [
        ("不是着火是烟囱冒烟", "着火", False),
        ("没有打架就是吵", "打架", False),
        ("我们这里着火了", "着火", True),
        ("孩子走丢了", "走失", True),
        ("老人叫不醒了", "晕倒", True),
        ("法院门口的路灯坏了", "法院", False),
        ("法院的人不理我", "法院", True),
        ("我是退伍军人", "军人", False),
        ("热水器打不着火", "着火", False),
    ],
)
def test_rules_hear_negation_places_and_synonyms(text: str, keyword: str, found: bool) -> None:
    m = matcher(_settings().intake)
    assert bool(m.hits(text, [keyword], emergency=True)) is found


def test_past_events_are_not_emergencies_but_still_words() -> None:
    m = matcher(_settings().intake)
    text = "上次有乘客晕倒司机送他去医院"
    assert m.hits(text, ["晕倒"], emergency=True) == []
    assert m.hits(text, ["晕倒"]) == [(5, "晕倒")]


def test_a_mention_is_not_a_request_but_an_emergency_still_is() -> None:
    m = matcher(_settings().intake)
    assert m.hits("你们说的仲裁我不懂", ["仲裁"], mentions=True) == []
    assert m.hits("我爸晕倒了我不懂怎么办", ["晕倒"], emergency=True) == [(2, "晕倒")]


# -- what the draft records --------------------------------------------------------


def test_draft_carries_confidence_top_three_and_version() -> None:
    result = _draft("我家门口的下水道堵住了污水漫出来了麻烦派人来通一下")
    assert result.model_version is not None
    assert result.department_confidence is not None
    assert 0 < result.department_confidence <= 1
    assert result.category_confidence is not None
    assert len(result.departments_top3) == 3
    assert result.departments_top3[0][0] == result.department
    probabilities = [p for _, p in result.departments_top3]
    assert probabilities == sorted(probabilities, reverse=True)


def test_low_confidence_fields_are_named() -> None:
    cfg = _settings()
    strict = cfg.model_copy(update={"intake": cfg.intake.model_copy(update={"low_confidence": 1})})
    line = cfg.line(cfg.hotline)
    assert line is not None
    result = analyze(strict, "我家门口的下水道堵住了", line=line)
    assert result.low_confidence == ("category", "department")
    assert _draft("我爸是退伍军人想问一下优抚金怎么领").low_confidence == ()


def test_routing_override_wins_over_the_model() -> None:
    from ivr.config import RoutingOverride

    cfg = _settings()
    rule = RoutingOverride(keywords=["下水道"], department="城市管理综合执法局", category="投诉")
    policy = cfg.model_copy(
        update={"intake": cfg.intake.model_copy(update={"routing_overrides": [rule]})}
    )
    line = cfg.line(cfg.hotline)
    assert line is not None
    result = analyze(policy, "我家门口的下水道堵住了", line=line)
    assert (result.category, result.category_source) == ("投诉", "override")
    assert (result.department, result.department_source) == ("城市管理综合执法局", "override")
    # a negated keyword does not trigger it
    assert analyze(policy, "不是下水道是水管", line=line).department_source != "override"


# -- the noise channel --------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3])
def test_noise_channel_hits_its_character_error_rate(rate: float) -> None:
    texts = [e.text for e in load_corpus() if e.split == "test"]
    noisy, measured = HomophoneChannel(seed=7).corrupt_all(texts, rate)
    assert abs(measured - rate) <= 0.02
    changed = sum(
        a != b for t, n in zip(texts, noisy, strict=True) for a, b in zip(t, n, strict=True)
    )
    assert changed / sum(map(len, texts)) == pytest.approx(measured)


def test_noise_channel_replaces_by_homophones_and_is_seeded() -> None:
    from pypinyin import lazy_pinyin

    text = "我家门口的下水道堵住了污水漫出来了"
    noisy, changed = HomophoneChannel(seed=3).corrupt(text, 0.3)
    assert changed > 0 and noisy != text
    assert lazy_pinyin(noisy) == lazy_pinyin(text)
    assert HomophoneChannel(seed=3).corrupt(text, 0.3) == (noisy, changed)
