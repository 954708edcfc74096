"""Statement -> draft-ticket facts, against the real config.yaml."""

from __future__ import annotations

import csv
import dataclasses
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.data import HOTLINE
from ivr.config import LineConfig, Settings, load_config
from ivr.intake.address import Address, extract_address
from ivr.intake.analyze import Analysis, analyze, summarize
from ivr.intake.similarity import similarity

HOTLINE_TSV = HOTLINE / "transcripts.tsv"


@cache
def _settings() -> Settings:
    return load_config()


@pytest.fixture
def cfg() -> Settings:
    return _settings()


def _line(cfg: Settings, number: str) -> LineConfig:
    line = cfg.line(number)
    assert line is not None
    return line


def _analyze(cfg: Settings, text: str, line: str = "12345", **kw: str | None) -> Analysis:
    return analyze(cfg, text, line=_line(cfg, line), **kw)


def _keywords_only(cfg: Settings) -> Settings:
    """The keyword lists alone (no model, no routing overrides): how hints are applied."""
    plain = cfg.intake.model_copy(update={"use_model": False, "routing_overrides": []})
    return cfg.model_copy(update={"intake": plain})


# -- the recorded hotline statements ------------------------------------------

# file -> (department, urgent); every one of them is in scope.
HOTLINE_EXPECTED = {
    "h01.wav": ("城市管理综合执法局", False),  # 烧烤店噪音扰民
    "h02.wav": ("人力资源和社会保障局", False),  # 社保卡
    "h03.wav": ("水务局", True),  # 停水
    "h04.wav": ("公安交警支队", False),  # 红绿灯
    "h05.wav": ("市场监督管理局", False),  # 药店过期药品
    "h06.wav": ("市场监督管理局", False),  # 外卖退款
    "h07.wav": ("医疗保障局", False),  # 医保参保
    "h08.wav": ("城市管理综合执法局", False),  # 路灯
    "h09.wav": ("住房和城乡建设局", False),  # 物业 + 停车费 beat 发票
    "h10.wav": ("住房公积金管理中心", False),
    "h11.wav": ("生态环境局", False),  # 河边 + 污染 beat 建筑垃圾
    "h12.wav": ("公安局", True),  # 老人走失
    "h13.wav": ("交通运输局", False),  # 公交
    "h14.wav": ("人力资源和社会保障局", False),  # 拖欠工资
    "h15.wav": ("市场监督管理局", False),  # 营业执照年报
    "h16.wav": ("燃气公司", True),  # 燃气漏气
}


@pytest.fixture(scope="module")
def hotline_rows() -> dict[str, tuple[str, str]]:
    with HOTLINE_TSV.open(encoding="utf-8", newline="") as f:
        return {r["file"]: (r["category"], r["text"]) for r in csv.DictReader(f, delimiter="\t")}


def test_hotline_tsv_is_covered(hotline_rows: dict[str, tuple[str, str]]) -> None:
    assert set(hotline_rows) == set(HOTLINE_EXPECTED)


@pytest.mark.parametrize("file", sorted(HOTLINE_EXPECTED))
def test_hotline_statement(
    cfg: Settings, hotline_rows: dict[str, tuple[str, str]], file: str
) -> None:
    category, text = hotline_rows[file]
    department, urgent = HOTLINE_EXPECTED[file]
    drafted = _analyze(cfg, text)
    assert (drafted.category, drafted.department) == (category, department)
    assert drafted.urgent is urgent
    assert drafted.scope is None
    result = _analyze(_keywords_only(cfg), text)
    assert (result.category, result.category_source) == (category, "text")
    assert (result.department, result.department_source) == (department, "keywords")
    assert result.department_keywords
    assert result.urgent is urgent
    assert bool(result.urgency_keywords) is urgent
    assert result.scope is None
    assert result.phone_numbers == ()
    assert result.summary == text  # short statements are their own summary


def test_hotline_addresses(cfg: Settings, hotline_rows: dict[str, tuple[str, str]]) -> None:
    found = {f: _analyze(cfg, text).address for f, (_, text) in hotline_rows.items()}
    assert found.pop("h04.wav") == Address("云南省", "昆明市", None, "人民路和解放路路口", "530100")
    # 小区楼下, 河边, 我们这里 ... are not addresses
    assert set(found.values()) == {None}


# -- scope rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule", "kind", "matched"),
    [
        ("楼下有人打架斗殴，已经打了十分钟了", "警情", "emergency", "打架"),
        ("对面楼着火了，好大的烟", "火警", "emergency", "着火"),
        ("我爸在小区门口晕倒了", "急救", "emergency", "晕倒"),
        ("人民路口发生车祸了", "交通事故", "emergency", "车祸"),
        ("开发商不给办房产证我要起诉他们", "诉讼", "out_of_scope", "起诉"),
        ("劳动仲裁怎么申请", "仲裁", "out_of_scope", "仲裁"),
        ("我想去信访局信访", "信访", "out_of_scope", "信访"),
        ("对区政府的处罚决定申请行政复议", "行政复议", "out_of_scope", "行政复议"),
        ("执行法官一直不理我", "法院检察院", "out_of_scope", "执行法官"),
        ("部队训练的枪声晚上太吵", "军队武警", "out_of_scope", "部队训练"),
        # an emergency wins over an out-of-scope matter said first
        ("我要起诉他，现在楼下着火了", "火警", "emergency", "着火"),
    ],
)
def test_scope_rules(cfg: Settings, text: str, rule: str, kind: str, matched: str) -> None:
    scope = _analyze(cfg, text).scope
    assert scope is not None
    assert (scope.rule, scope.kind, scope.matched) == (rule, kind, matched)
    assert scope.advice == next(r.advice for r in cfg.scope_rules if r.name == rule)


def test_doubled_character_is_not_a_keyword_end(cfg: Settings) -> None:
    # 正在偷偷排污 is 偷偷 (secretly), not 正在偷 (a theft in progress).
    result = _analyze(cfg, "有人正在偷偷排污，河道全是异味")
    assert result.scope is None
    assert (result.category, result.department) == ("举报", "生态环境局")
    assert _analyze(cfg, "有人正在偷车").scope is not None


# -- more statements -------------------------------------------------------------


def test_vosk_style_statement_with_address_and_phone(cfg: Settings) -> None:
    raw = (
        "我 要 投诉 五华区 青年路 一百二十三 号 的 饭店 油烟 扰民 "
        "我 的 电话 是 幺 三 八 零 零 一 三 八 零 零 零"
    )
    result = _analyze(cfg, raw)
    assert result.text == "我要投诉五华区青年路123号的饭店油烟扰民我的电话是13800138000"
    assert (result.category, result.department) == ("投诉", "市场监督管理局")
    assert result.address == Address("云南省", "昆明市", "五华区", "青年路123号", "530102")
    assert result.address is not None
    assert result.address.text == "云南省昆明市五华区青年路123号"
    assert result.phone_numbers == ("13800138000",)
    assert "13800138000" not in result.summary
    assert "138****8000" in result.summary


def test_house_number_in_a_residential_compound(cfg: Settings) -> None:
    result = _analyze(cfg, "我住在盘龙区阳光花园小区三栋二单元五零一室楼上装修太吵了")
    assert result.address == Address(
        "云南省", "昆明市", "盘龙区", "阳光花园小区3栋2单元501室", "530103"
    )
    assert result.department == "住房和城乡建设局"


def test_street_only_is_completed_with_the_configured_city(cfg: Settings) -> None:
    result = _analyze(cfg, "东风西路三十号门口的井盖丢了")
    assert result.address == Address("云南省", "昆明市", None, "东风西路30号", "530100")
    assert result.department == "城市管理综合执法局"


def test_district_only(cfg: Settings) -> None:
    result = _analyze(cfg, "请问西山区的社保卡在哪里办理")
    assert result.address == Address("云南省", "昆明市", "西山区", None, "530112")
    assert (result.category, result.department) == ("咨询", "人力资源和社会保障局")


def test_local_landline_gets_the_city_area_code(cfg: Settings) -> None:
    result = _analyze(cfg, "有事打我座机电话六五一二三四五六")
    assert result.phone_numbers == ("087165123456",)
    assert "65123456" not in result.summary


def test_menu_category_overrides_the_text(cfg: Settings) -> None:
    result = _analyze(cfg, "我要投诉物业乱收停车费", menu_category="咨询")
    assert (result.category, result.category_source) == ("咨询", "menu")
    assert result.department == "住房和城乡建设局"


def test_unknown_menu_category_is_ignored(cfg: Settings) -> None:
    result = _analyze(cfg, "我要投诉物业乱收停车费", menu_category="表扬")
    assert (result.category, result.category_source) == ("投诉", "text")


@pytest.mark.parametrize(
    ("line", "category", "department"),
    [
        ("12315", "投诉", "市场监督管理局"),
        ("12345", "咨询", "12345热线办公室"),
        ("12369", "举报", "生态环境局"),
    ],
)
def test_no_keywords_falls_back_to_the_line(
    cfg: Settings, line: str, category: str, department: str
) -> None:
    result = _analyze(cfg, "喂你好", line=line)
    assert (result.category, result.category_source) == (category, "line_default")
    assert (result.department, result.department_source) == (department, "line_default")
    assert result.department_keywords == ()
    assert not result.urgent
    assert result.scope is None
    assert result.address is None
    assert result.summary == "喂你好"


def test_empty_statement(cfg: Settings) -> None:
    result = _analyze(cfg, "", line="12333")
    assert (result.category, result.department) == ("咨询", "人力资源和社会保障局")
    assert (result.text, result.summary, result.address) == ("", "", None)


def test_department_tie_goes_to_the_keyword_heard_first(cfg: Settings) -> None:
    # one keyword each: 公交 (交通运输局) is heard before 发票 (税务局)
    hints = _keywords_only(cfg)
    assert _analyze(hints, "公交公司不给开发票").department == "交通运输局"
    assert _analyze(hints, "要发票的时候公交司机不理人").department == "税务局"


def test_category_tie_goes_to_the_keyword_heard_first(cfg: Settings) -> None:
    hints = _keywords_only(cfg)
    assert _analyze(hints, "我要举报，也想投诉这家店").category == "举报"
    assert _analyze(hints, "我要投诉，也想举报这家店").category == "投诉"


def test_urgency_keywords_in_text_order(cfg: Settings) -> None:
    result = _analyze(cfg, "小区停电了电梯里有人被困")
    assert result.urgent
    assert result.urgency_keywords == ("停电", "被困")
    assert result.department == "供电局"


def test_summary_is_one_short_line(cfg: Settings) -> None:
    text = (
        "喂，你好，我是住在官渡区关上街道的居民，我们小区门口的烧烤摊每天晚上占道经营，"
        "油烟很大，噪音一直到凌晨两三点，已经反映过好几次了，一直没有人来处理，希望尽快解决。"
    )
    result = _analyze(cfg, text)
    assert len(result.summary) <= 60
    assert result.summary.startswith("我是住在官渡区关上街道的居民")
    assert "\n" not in result.summary
    assert result.address == Address("云南省", "昆明市", "官渡区", "关上街道", "530111")
    assert result.department == "城市管理综合执法局"


def test_summary_drops_greetings() -> None:
    assert summarize("喂，你好，请问社保卡怎么办理") == "请问社保卡怎么办理"
    assert summarize("嗯嗯 那个 就是 小区停电了") == "小区停电了"


def test_summary_without_punctuation_is_cut() -> None:
    summary = summarize("我要投诉" * 30)
    assert len(summary) == 60
    assert summary.endswith("…")


def test_analysis_is_immutable(cfg: Settings) -> None:
    result = _analyze(cfg, "喂你好")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.category = "投诉"  # type: ignore[misc]


# -- addresses: cpca reads place names into ordinary words --------------------------


@pytest.mark.parametrize(
    "text",
    [
        "晚上吵得不得安宁",  # 安宁市
        "希望各部门合作解决",  # 合作市
        "朝阳的房间太热了",  # 朝阳市
        "我们县里的路灯坏了",  # 重庆市 县
        "东方市场乱收费",  # 东方市
        "城区的路灯都不亮",  # 汕尾市 城区
        "我们小区西区停水了",  # 攀枝花市 西区
        "桌子是大理石做的",  # 大理市
        "祝您身体安康",  # 安康市
        "过马路很危险",
        "这条路太烂了",
        "我们村里的路灯坏了",
        "老旧小区改造什么时候开始",
        "每天晚上跳广场舞扰民",
    ],
)
def test_no_address_in_ordinary_words(cfg: Settings, text: str) -> None:
    assert extract_address(text, cfg.city) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我家住在五华区青年路123号下水道堵了", ("五华区", "青年路123号", "530102")),
        ("盘龙区北京路138号", ("盘龙区", "北京路138号", "530103")),
        ("云南省昆明市呈贡区吴家营街道", ("呈贡区", "吴家营街道", "530114")),
        ("昆明五华区人民路", ("五华区", "人民路", "530102")),
        ("我在中山路", (None, "中山路", "530100")),  # not 中山市
        ("长春路五华区这边", ("五华区", "长春路", "530102")),  # not 长春市
        ("举报幸福小区有人违建", (None, "幸福小区", "530100")),
        ("我在海埂路和滇池路交叉口", (None, "海埂路和滇池路交叉口", "530100")),
        ("我住在金碧路附近", (None, "金碧路", "530100")),
    ],
)
def test_addresses(cfg: Settings, text: str, expected: tuple[str | None, str, str]) -> None:
    address = extract_address(text, cfg.city)
    assert address is not None
    assert (address.province, address.city) == ("云南省", "昆明市")
    assert (address.district, address.street, address.adcode) == expected


def test_address_in_another_city(cfg: Settings) -> None:
    address = extract_address("我在北京市朝阳区建国路88号", cfg.city)
    assert address == Address("北京市", "北京市", "朝阳区", "建国路88号", "110105")
    assert address.text == "北京市朝阳区建国路88号"


# -- duplicates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "我家已经停水两天了一直没有人来修请尽快处理",
            "我家停水两天了，还没有人来修，请尽快处理一下",
        ),
        ("我要投诉我们小区楼下的烧烤店每天晚上噪音扰民", "投诉小区楼下烧烤店，每天晚上噪音扰民！"),
        ("单位拖欠了我三个月的工资一直不发", "单位 拖欠 了 我 三 个 月 的 工资 一直 不 发"),
    ],
)
def test_near_duplicates_are_similar(a: str, b: str) -> None:
    assert similarity(a, b) >= 0.6
    assert similarity(a, b) == pytest.approx(similarity(b, a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("我家已经停水两天了一直没有人来修请尽快处理", "请问营业执照年报在哪里填报"),
        ("我要投诉我们小区楼下的烧烤店每天晚上噪音扰民", "老人走失了请帮忙联系派出所"),
        ("物业公司乱收停车费还不给开发票", "希望公交车晚上能多开几班"),
    ],
)
def test_unrelated_statements_are_not(a: str, b: str) -> None:
    assert similarity(a, b) < 0.3


def test_similarity_edges() -> None:
    assert similarity("我要投诉", "我要投诉") == 1.0
    assert similarity("", "") == 0.0
    assert similarity("好", "好") == 1.0
    assert similarity("，。！", "我要投诉") == 0.0


_PLACE_CHARS = "省市区县路街号栋室村和在的我们一二三十百幺零0123456789，。 -"
_PLACE_WORDS = ["五华区", "昆明市", "朝阳", "安宁", "北京", "人民路", "小区", "路口", "着火"]
_PLACEY = st.lists(st.sampled_from([*_PLACE_CHARS, *_PLACE_WORDS]), max_size=25).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), _PLACEY))
def test_analyze_accepts_any_text(text: str) -> None:
    cfg = _settings()
    result = analyze(cfg, text, line=_line(cfg, "12345"))
    assert len(result.summary) <= 60
    if result.address and result.address.street:
        assert result.address.street in result.text
