"""表扬 is drafted only where the office registers it (config.yaml `categories`)."""

from __future__ import annotations

from functools import cache

import pytest

from ivr.config import CategoryConfig, Settings, load_config
from ivr.intake.analyze import Analysis, analyze
from ivr.intake.corpus import corpus_files, load_corpus

from .conftest import ROOT

pytestmark = pytest.mark.skipif(not corpus_files(), reason="no intake corpus shipped")

PRAISE = CategoryConfig(name="表扬", deadline_workdays=5, keywords=["表扬", "点赞", "锦旗"])


@cache
def _without() -> Settings:
    cfg = load_config(ROOT / "config.yaml", env={})
    assert cfg.category("表扬") is None, "the shipped config.yaml registers no 表扬"
    return cfg


@cache
def _with() -> Settings:
    cfg = _without()
    return cfg.model_copy(update={"categories": [*cfg.categories, PRAISE]})


def _draft(cfg: Settings, text: str, line: str = "12345") -> Analysis:
    found = cfg.line(line)
    assert found is not None
    return analyze(cfg, text, line=found)


# Praise the corpus does not contain, with and without the word 表扬: (statement, department).
PRAISES = [
    ("我要表扬一下我们小区那个送水的师傅下雨天扛着水爬七楼一句怨言都没得", None),
    ("那个派出所的民警帮我把被骗的钱追回来了我想给他们送一面锦旗", "公安局"),
    ("社保窗口那个小姑娘帮我把退休手续一次就办完了态度好得很真的感谢", "人力资源和社会保障局"),
    ("我们这个片区的城管队员劝那些摆摊的人好言好语的我觉得他们做得很好", None),
    ("供电局的师傅半夜冒雨来抢修一直弄到天亮我们整栋楼都很感激", "供电局"),
    # 帮忙 and 希望 are the keyword hints of 求助 and 建议
    ("我想表扬一下那个社区医生我家老人生病是她帮忙联系的医院希望你们转达我们的谢意", None),
]

# Requests that mention thanks or good service but ask for something.
NOT_PRAISE = [
    ("谢谢你们我家门口的下水道堵住了麻烦派人来通一下", "求助"),
    ("以前的物业服务很好现在换了新物业天天乱收费我要投诉", "投诉"),
]


def test_praise_statements_are_new() -> None:
    corpus = "\n".join(e.text for e in load_corpus())
    for text, _ in PRAISES + NOT_PRAISE:
        assert text not in corpus


@pytest.mark.parametrize(("text", "department"), PRAISES)
def test_praise_is_drafted_as_praise_where_configured(text: str, department: str | None) -> None:
    result = _draft(_with(), text)
    assert result.category == "表扬"
    assert result.category_source == "text"
    assert not result.urgent
    assert result.scope is None
    if department is not None:
        assert result.department == department


@pytest.mark.parametrize(("text", "department"), PRAISES)
def test_without_praise_configured_the_line_default_is_drafted_for_the_operator_to_check(
    text: str, department: str | None
) -> None:
    for line, default in (("12345", "咨询"), ("12315", "投诉")):
        result = _draft(_without(), text, line)
        assert (result.category, result.category_source) == (default, "line_default")
        assert "category" in result.low_confidence
        assert result.category_confidence is None


@pytest.mark.parametrize(("text", "category"), NOT_PRAISE)
def test_a_thank_you_in_a_request_is_not_praise(text: str, category: str) -> None:
    assert _draft(_with(), text).category == category
    assert _draft(_without(), text).category == category


def test_menu_choice_of_praise_counts_only_where_configured() -> None:
    line = _with().line("12345")
    assert line is not None
    text = "我要投诉物业乱收停车费"
    assert analyze(_with(), text, line=line, menu_category="表扬").category == "表扬"
    assert analyze(_without(), text, line=line, menu_category="表扬").category == "投诉"
