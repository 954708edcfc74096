"""Where the caller's matter is: administrative area (via cpca) plus the street part.

cpca finds province/city/district names anywhere in a sentence, including in
ordinary words and street names: 不得安宁 (安宁市), 合作 (合作市), 朝阳的房间
(朝阳市), 北京路 (北京市), 东方市场 (东方市), 我们县里 (重庆市's 县). A match is
kept only when it is written out in full (五华区, 昆明市) or chained to another
match (昆明五华区); otherwise it is blanked out and cpca runs again, so a real
district later in the sentence is still found.

The street part is found without word segmentation: a place suffix (路, 街,
小区, 村, ...) with the name in front of it, cut where a function word begins
(在, 的, 我, ...), plus a following house number or junction.
"""

from __future__ import annotations

import importlib.resources
import re
import sys
import threading
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, BinaryIO

from ivr.config import CityConfig

__all__ = ["Address", "extract_address"]


@dataclass(frozen=True)
class Address:
    province: str | None
    city: str | None
    district: str | None
    street: str | None
    adcode: str | None

    @property
    def text(self) -> str:
        parts: list[str] = []
        for part in (self.province, self.city, self.district, self.street):
            if part and (not parts or parts[-1] != part):  # 北京市北京市 -> 北京市
                parts.append(part)
        return "".join(parts)


# -- administrative areas (cpca) -------------------------------------------

_RANK_COLUMNS = (("省", "省_pos"), ("市", "市_pos"), ("区", "区_pos"))
_SPECIAL_ABBR = {
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "新疆维吾尔自治区": "新疆",
    "宁夏回族自治区": "宁夏",
}
_ABBR_SUFFIX = re.compile(r"(?:[省市]|特别行政区|自治区)$")
# Names in the data that are not places a caller names.
_PLACEHOLDER = {"县", "市辖区", "省直辖县级行政区划", "自治区直辖县级行政区划"}
_NO_CITY = {"省直辖县级行政区划", "自治区直辖县级行政区划"}
# 城区, 郊区, 矿区, 西区, 老城区, 市中区...: words first, district names second.
_GENERIC_DISTRICT = re.compile(r"[东西南北中城新老郊矿市]+区")
_MASK = "#"
_MAX_CPCA_RUNS = 8
_ABSENT = object()


def _resource_stream(package: str, name: str) -> BinaryIO:
    return importlib.resources.files(package).joinpath(name).open("rb")


_CPCA_LOCK = threading.Lock()


@cache
def _cpca() -> ModuleType:
    """cpca, imported with a stand-in for the one `pkg_resources` call it makes.

    cpca 0.5.5 reads its table with `pkg_resources.resource_stream`. setuptools 81
    removed `pkg_resources` and Python 3.12+ venvs have no setuptools at all, so
    while cpca loads, `pkg_resources` is a module that serves the same file through
    importlib.resources; the previous entry (if any) is put back afterwards.
    Imported under a lock: a second thread (the phone's warm-up and a first call)
    would otherwise find the half-loaded module in sys.modules.
    """
    with _CPCA_LOCK:
        shim = ModuleType("pkg_resources")
        shim.resource_stream = _resource_stream  # type: ignore[attr-defined]
        saved = sys.modules.get("pkg_resources", _ABSENT)
        sys.modules["pkg_resources"] = shim
        try:
            import cpca  # loads its data (~0.4 s) once, on first use
        finally:
            if saved is _ABSENT:
                sys.modules.pop("pkg_resources", None)
            else:
                sys.modules["pkg_resources"] = saved
        return cpca


@dataclass(frozen=True)
class _Level:
    rank: int
    name: str
    start: int
    end: int
    full: bool


@dataclass(frozen=True)
class _Admin:
    province: str | None
    city: str | None
    district: str | None
    adcode: str | None
    spans: tuple[tuple[int, int], ...]


def _abbr(name: str) -> str:
    return _SPECIAL_ABBR.get(name) or _ABBR_SUFFIX.sub("", name)


@cache
def _city_codes(province: str, city: str) -> tuple[str | None, dict[str, str]]:
    """The configured city's adcode and its districts by name (for cpca's `umap`)."""
    infos = list(_cpca().ad_2_addr_dict.values())
    names = {info.adcode: info.name for info in infos}
    city_code = next(
        (
            info.adcode
            for info in infos
            if info.rank == 1
            and info.name == city
            and names.get(info.adcode[:2] + "0000") == province
        ),
        None,
    )
    if city_code is None:
        return None, {}
    districts = {
        info.name: info.adcode
        for info in infos
        if info.rank == 2 and info.adcode.startswith(city_code[:4])
    }
    return city_code, districts


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _levels(text: str, row: dict[str, Any]) -> list[_Level]:
    levels = []
    for rank, (name_col, pos_col) in enumerate(_RANK_COLUMNS):
        name, pos = _str(row.get(name_col)), int(row.get(pos_col, -1))
        if name is None or pos < 0:
            continue
        if text.startswith(name, pos):
            levels.append(_Level(rank, name, pos, pos + len(name), True))
        else:
            size = len(_abbr(name)) if text.startswith(_abbr(name), pos) else 1
            levels.append(_Level(rank, name, pos, pos + size, False))
    return sorted(levels, key=lambda lv: lv.start)


def _valid_alone(text: str, level: _Level) -> bool:
    if not level.full or level.name in _PLACEHOLDER or len(level.name) < 2:
        return False
    if level.rank == 2 and _GENERIC_DISTRICT.fullmatch(level.name):
        return False
    return not (level.name.endswith("市") and text.startswith("场", level.end))  # 东方市场


def _invalid_levels(text: str, levels: list[_Level]) -> list[_Level]:
    """Matches that are neither written out in full nor chained to a neighbour."""
    chains: list[list[_Level]] = []
    for level in levels:
        if chains and chains[-1][-1].end == level.start:
            chains[-1].append(level)
        else:
            chains.append([level])
    invalid: list[_Level] = []
    for chain in chains:
        last = chain[-1]
        street_name = not last.full and text[last.end : last.end + 1] in set("路街巷道")
        if street_name or (len(chain) == 1 and not _valid_alone(text, last)):
            invalid.extend(chain)
    return invalid


def _match(cpca: ModuleType, text: str, umap: dict[str, str]) -> dict[str, Any]:
    """cpca's row for one sentence. `transform` gives the same row as a one-line pandas
    DataFrame, which costs ~20 times the matching itself; the function it calls per
    sentence (cpca 0.5.5, pinned in pyproject.toml) returns the dict."""
    row: dict[str, Any] = cpca._get_one_addr(text, True, umap)
    return row


def _admin(text: str, city: CityConfig) -> _Admin | None:
    cpca = _cpca()
    _, umap = _city_codes(city.province, city.city)
    probe = text
    for _ in range(_MAX_CPCA_RUNS):
        row: dict[str, Any] = _match(cpca, probe, umap)
        levels = _levels(probe, row)
        if not levels:
            return None
        invalid = _invalid_levels(probe, levels)
        if not invalid:
            province, town = _str(row.get("省")), _str(row.get("市"))
            if town in _PLACEHOLDER:
                town = None if town in _NO_CITY else province
            return _Admin(
                province=province,
                city=town,
                district=_str(row.get("区")),
                adcode=_str(row.get("adcode")),
                spans=tuple((lv.start, lv.end) for lv in levels),
            )
        for lv in invalid:
            probe = probe[: lv.start] + _MASK * (lv.end - lv.start) + probe[lv.end :]
    return None


# -- street part -------------------------------------------------------------

_SUFFIX = re.compile(r"大道|大街|街道|社区|小区|花园|新村|胡同|村|巷|路|街")
_ROAD = {"路", "街", "大道", "大街"}
# 路过, 路线, 路灯 ... and 街坊 are words, not a street.
_NOT_SUFFIX_BEFORE = {"路": set("过线费况面由径灯"), "街": set("坊")}
_JUNCTION = re.compile(r"十字路口|丁字路口|交叉路口|交叉口|交汇处|路口|口")
_NUMBER = re.compile(r"(?:附?\d+(?:号院|号楼|号|栋|幢|单元|室|楼|层|弄))+")
_CONNECTORS = {"", "和", "与", "跟", "及", "、", "到"}
_MAX_NAME = 6
# Characters that do not occur in place names but right before them (在, 的, 我...).
_STOP = set(
    "的了在是我你他她它们这那个有很都也还就要想说去到从往向于住过把被给让对与及跟条些么吗呢吧"
    "啊呀嘛请问叫但而或着得没不多每各该其某看找报诉映议，。！？、；：,.!?;: "
)
_PREFIX_WORDS = re.compile(
    r"^(?:靠近|经过|前往|路过|来到|回到|附近|旁边|对面|隔壁|门口|楼下|楼上|投诉|举报|反映|反应|"
    r"建议|咨询|求助|就是|还有|然后|但是|因为|所以|现在|今天|昨天|晚上|早上|白天|每天|经常|"
    r"这边|那边|家里|老家)+"
)
# Ordinary words made of one character plus a place suffix (马路, 农村, 逛街).
_GENERIC_BEFORE = {
    "路": "马道公铁线电网小大水出思套走引带问让修迷上一半后老新土",
    "村": "农乡山全本邻",
    "街": "上逛满",
}
_GENERIC_NAME = {
    "老旧",
    "新建",
    "附近",
    "周边",
    "隔壁",
    "对面",
    "旁边",
    "整个",
    "所在",
    "本地",
    "当地",
}


@dataclass(frozen=True)
class _Element:
    start: int
    end: int
    suffix: str


def _name_start(text: str, limit: int, suffix_start: int) -> int:
    k = suffix_start
    while k > limit and suffix_start - k < _MAX_NAME:
        ch = text[k - 1]
        # 和 joins two streets (人民路和解放路) but starts names too (和平路).
        joins = ch == "和" and k - 2 >= 0 and text[k - 2] in "路街道巷村区口号"
        if ch in _STOP or joins or not ("\u4e00" <= ch <= "\u9fff"):
            break
        k -= 1
    m = _PREFIX_WORDS.match(text, k, suffix_start)
    return m.end() if m else k


def _element_end(text: str, suffix: str, end: int) -> int:
    number = _NUMBER.match(text, end)
    if number:
        return number.end()
    if suffix in _ROAD:
        junction = _JUNCTION.match(text, end)
        if junction:
            return junction.end()
    return end


def _elements(text: str, blocked: tuple[tuple[int, int], ...]) -> list[_Element]:
    found: list[_Element] = []
    for m in _SUFFIX.finditer(text):
        s, e, suffix = m.start(), m.end(), m.group()
        if any(a <= s < b for a, b in blocked) or (found and s < found[-1].end):
            continue
        if text[e : e + 1] in _NOT_SUFFIX_BEFORE.get(suffix, ()):
            continue
        limit = max([0] + [b for _, b in blocked if b <= s] + [x.end for x in found])
        k = _name_start(text, limit, s)
        name = text[k:s]
        if not name and found and found[-1].end == s and found[-1].suffix != suffix:
            # A second suffix right after the first belongs to it: 阳光花园小区, 张家村路.
            found[-1] = _Element(found[-1].start, _element_end(text, suffix, e), suffix)
            continue
        if len(name) < 2 or name in _GENERIC_NAME or name[-1] in _GENERIC_BEFORE.get(suffix, ""):
            continue
        found.append(_Element(k, _element_end(text, suffix, e), suffix))
    return found


def _street(text: str, admin: _Admin | None) -> str | None:
    blocked = admin.spans if admin else ()
    elements = _elements(text, blocked)
    if not elements:
        return None
    after = admin.spans[-1][1] if admin else 0
    first = next((i for i, el in enumerate(elements) if el.start >= after), 0)
    start, end = elements[first].start, elements[first].end
    for el in elements[first + 1 :]:
        if text[end : el.start] not in _CONNECTORS:
            break
        end = el.end
    return text[start:end]


def extract_address(text: str, city: CityConfig) -> Address | None:
    """The location named in a (normalized) statement, or None when it names none.

    A statement that names only a street, or only a district of the configured
    city, is completed with the configured province and city.
    """
    admin = _admin(text, city)
    street = _street(text, admin)
    if admin is None and street is None:
        return None
    if admin is None:
        city_code, _ = _city_codes(city.province, city.city)
        return Address(city.province, city.city, None, street, city_code)
    return Address(admin.province, admin.city, admin.district, street, admin.adcode)
