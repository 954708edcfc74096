"""Mandarin normalization of recognizer output: spaces, spoken digits, vocabulary, phones."""

from __future__ import annotations

import csv
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import data
from ivr.asr.normalize import (
    VocabularyCorrector,
    extract_phone_numbers,
    normalize_transcript,
    spoken_digits_to_digits,
    strip_spaces,
)
from ivr.config import load_config

HOTLINE_TSV = data.HOTLINE / "transcripts.tsv"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("我 要 投诉", "我要投诉"),
        ("我 要 投诉 五华区 青年路", "我要投诉五华区青年路"),
        ("  前后 有 空格  ", "前后有空格"),
        ("hello   world", "hello world"),
        ("我 用 WiFi 上网", "我用WiFi上网"),
        ("iPhone 15 坏 了", "iPhone 15坏了"),
        ("1 3 8", "138"),
        ("幺 三 八", "幺三八"),
        ("你好 ， 请问", "你好，请问"),
        ("换行\n和\t制表", "换行和制表"),
        ("", ""),
    ],
)
def test_strip_spaces(raw: str, expected: str) -> None:
    assert strip_spaces(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # phone, hotline and ticket numbers: runs of 3+ single digits
        ("幺三八零零一三八零零零", "13800138000"),
        ("我的电话是一三九一二三四五六七八", "我的电话是13912345678"),
        ("一二三四五", "12345"),
        ("拨打幺幺零", "拨打110"),
        ("二〇二四年", "2024年"),
        ("工单号是二零二六一一二二零零零四二", "工单号是2026112200042"),
        # house numbers: numbers in place before 号/号楼/栋/幢/单元/室/楼/层
        ("人民路一百二十三号", "人民路123号"),
        ("三栋二单元五零一室", "3栋2单元501室"),
        ("十号楼", "10号楼"),
        ("二十五号院", "25号院"),
        ("北京路一百零五号", "北京路105号"),
        ("七幢十一楼", "7幢11楼"),
        ("住在六层", "住在6层"),
        ("两千三号", "2300号"),
        ("统一三号楼", "统一3号楼"),
    ],
)
def test_spoken_digits_become_digits(raw: str, expected: str) -> None:
    assert spoken_digits_to_digits(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "单位拖欠了我三个月的工资",
        "我家已经停水两天了",
        "一直没有人来修",
        "路灯坏了一个多月",
        "噪音扰民到凌晨两点",
        "我要举报一家药店",
        "希望统一管理",
        "同一栋楼都停电了",
        "每一层都有垃圾",
        "三三两两的人",
        "来了四五六个人",
        "几百号人排队",
        "两百号人排队",
        "五一劳动节",
        "一两个人",
    ],
)
def test_ordinary_quantities_stay(text: str) -> None:
    assert spoken_digits_to_digits(text) == text


def test_normalize_vosk_output() -> None:
    raw = "我 要 投诉 五华区 青年路 一百二十三 号 电话 幺 三 八 零 零 一 三 八 零 零 零"
    assert normalize_transcript(raw) == "我要投诉五华区青年路123号电话13800138000"


def test_normalize_keeps_statements_without_numbers() -> None:
    text = "单位拖欠了我三个月的工资一直不发"
    assert normalize_transcript(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalize_never_raises_and_is_idempotent(text: str) -> None:
    once = normalize_transcript(text)
    assert normalize_transcript(once) == once


_NUMBERISH = st.text(
    st.sampled_from(
        list("零〇一幺二两三四五六七八九十百千号楼栋幢单元室层个天人同每我 0123456789路-")
    ),
    max_size=20,
)


@settings(max_examples=1000, deadline=None)
@given(_NUMBERISH)
def test_normalize_is_idempotent_on_number_heavy_text(text: str) -> None:
    once = normalize_transcript(text)
    assert normalize_transcript(once) == once


# -- vocabulary ------------------------------------------------------------


@pytest.fixture(scope="module")
def corrector() -> VocabularyCorrector:
    return VocabularyCorrector(load_config().asr.vocabulary)


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("我住在盘笼区", "我住在盘龙区"),  # same pinyin
        ("我想提取公机金", "我想提取公积金"),
        ("我住在盘农区", "我住在盘龙区"),  # nong vs long: one letter
        ("五化区人民路", "五华区人民路"),
        ("青年鹿一百号", "青年路一百号"),
        ("办理射保卡", "办理社保卡"),
        ("营业执找年报", "营业执照年报"),
    ],
)
def test_vocabulary_fixes_near_misses(
    corrector: VocabularyCorrector, heard: str, expected: str
) -> None:
    assert corrector.correct(heard) == expected


@pytest.mark.parametrize(
    "text",
    [
        "我住在盘龙区",
        "社会解放了",  # jie fang le vs 解放路: a different last syllable is a different word
        "青年旅社",
        "单位拖欠了我三个月的工资一直不发",
        "hello 世界",
        "",
    ],
)
def test_vocabulary_leaves_other_text_alone(corrector: VocabularyCorrector, text: str) -> None:
    assert corrector.correct(text) == text


def test_vocabulary_leaves_the_recorded_statements_alone() -> None:
    cfg = load_config()
    words = cfg.asr.vocabulary + [k for d in cfg.departments for k in d.keywords]
    corrector = VocabularyCorrector(words)
    with HOTLINE_TSV.open(encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f, delimiter="\t")]
    assert len(texts) == 16
    assert [corrector.correct(t) for t in texts] == texts


def test_vocabulary_is_fast_enough_for_hundreds_of_words() -> None:
    cfg = load_config()
    words = [k for c in cfg.categories for k in c.keywords]
    words += [k for d in cfg.departments for k in d.keywords] + [d.name for d in cfg.departments]
    words += cfg.asr.vocabulary
    words += [a + b + s for a in "东西南北金碧青年" for b in "华风山湖" for s in "路街"]
    corrector = VocabularyCorrector(words)
    assert len(corrector.words) >= 200
    text = ("我家住在盘笼区青年路一百号楼下的烧烤店每天晚上噪音扰民" * 8)[:200]
    started = time.perf_counter()
    corrected = corrector.correct(text)
    assert time.perf_counter() - started < 0.5
    assert "盘龙区" in corrected


# -- phone numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的电话是13800138000", ["13800138000"]),
        ("手机13800138000，座机0871-65123456", ["13800138000", "087165123456"]),
        ("打01012345678或者02087654321", ["01012345678", "02087654321"]),
        ("号码+8613912345678", ["13912345678"]),
        ("13800138000，再说一遍13800138000", ["13800138000"]),
        ("工单号12345-20261122-00042", []),
        ("人民路123号", []),
        ("138001380001", []),  # twelve digits is not a mobile
        ("电话是65123456", []),  # no area code known
    ],
)
def test_extract_phone_numbers(text: str, expected: list[str]) -> None:
    assert extract_phone_numbers(text) == expected


def test_local_number_gets_the_area_code() -> None:
    assert extract_phone_numbers("我的电话是65123456", area_code="0871") == ["087165123456"]
    # without a word that announces a phone number, eight digits are not one
    assert extract_phone_numbers("订单20261122", area_code="0871") == []
