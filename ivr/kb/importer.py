"""Articles from the files departments send: .csv / .xlsx tables or Markdown.

Table columns (English or Chinese headers): title/标题, body/正文, department/部门,
keywords/关键词 (separated by 、 , ， ; or spaces), valid_from/生效日期,
valid_to/失效日期, source/来源. Markdown: one article per `## 标题` heading, then
optional `key: value` lines (部门, 关键词, 有效期 "2026-01-01 至 2027-12-31" or 长期,
来源), then the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ivr.tables import read_rows


class ArticleFileError(ValueError):
    """A file or one of its articles cannot be read; the message says where."""


@dataclass(frozen=True)
class ArticleData:
    title: str
    body: str
    department: str = ""
    keywords: tuple[str, ...] = field(default_factory=tuple)
    valid_from: date | None = None
    valid_to: date | None = None
    source: str = ""


_COLUMNS = {
    "title": ("title", "标题"),
    "body": ("body", "正文", "内容"),
    "department": ("department", "部门", "承办部门"),
    "keywords": ("keywords", "关键词"),
    "valid_from": ("valid_from", "生效日期"),
    "valid_to": ("valid_to", "失效日期"),
    "source": ("source", "来源", "来源文件"),
}
_FIELD = {alias: name for name, aliases in _COLUMNS.items() for alias in aliases}
_KEYWORD_SPLIT = re.compile(r"[、,，;；\s]+")
_META = re.compile(r"^(部门|关键词|有效期|来源|生效日期|失效日期)\s*[:：]\s*(.*)$")
_RANGE = re.compile(r"^(\S+)\s*(?:至|到|~|-{1,2}|—)\s*(\S+)$")
_OPEN = {"", "长期", "长期有效", "无", "-"}


def keywords_of(text: str) -> tuple[str, ...]:
    return tuple(k for k in _KEYWORD_SPLIT.split(text.strip()) if k)


def _day(value: str, where: str) -> date | None:
    value = value.strip()
    if value in _OPEN:
        return None
    try:
        return date.fromisoformat(value[:10].replace("/", "-").replace(".", "-"))
    except ValueError as exc:
        raise ArticleFileError(f"{where}: not a date (YYYY-MM-DD): {value!r}") from exc


def _article(fields: dict[str, str], where: str) -> ArticleData:
    title, body = fields.get("title", "").strip(), fields.get("body", "").strip()
    if not title or not body:
        raise ArticleFileError(f"{where}: an article needs a title and a body")
    article = ArticleData(
        title=title,
        body=body,
        department=fields.get("department", "").strip(),
        keywords=keywords_of(fields.get("keywords", "")),
        valid_from=_day(fields.get("valid_from", ""), where),
        valid_to=_day(fields.get("valid_to", ""), where),
        source=fields.get("source", "").strip(),
    )
    if article.valid_from and article.valid_to and article.valid_to < article.valid_from:
        raise ArticleFileError(f"{where}: valid_to is before valid_from")
    return article


def _from_table(path: Path) -> list[ArticleData]:
    rows = read_rows(path)
    out = []
    for n, row in enumerate(rows, start=2):
        fields = {_FIELD[k]: v for k, v in row.items() if k in _FIELD}
        if not any(v.strip() for v in fields.values()):
            continue  # an empty row at the end of a sheet
        out.append(_article(fields, f"{path.name} row {n}"))
    return out


def _from_markdown(path: Path) -> list[ArticleData]:
    out: list[ArticleData] = []
    fields: dict[str, str] | None = None
    body: list[str] = []
    start = 0

    def flush() -> None:
        if fields is not None:
            fields["body"] = "\n".join(body).strip()
            out.append(_article(fields, f"{path.name} line {start}"))

    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.startswith("## "):
            flush()
            fields, body, start = {"title": line[3:].strip()}, [], n
            continue
        if fields is None:
            continue  # the file's own heading and introduction
        meta = _META.match(line.strip())
        if meta and not body:
            key, value = meta.groups()
            if key == "有效期":
                span = _RANGE.match(value.strip())
                fields["valid_from"], fields["valid_to"] = span.groups() if span else ("", value)
            else:
                name = {"部门": "department", "关键词": "keywords", "来源": "source"}
                fields[name.get(key, "valid_from" if key == "生效日期" else "valid_to")] = value
            continue
        if line.strip() or body:
            body.append(line)
    flush()
    return out


def read_articles(path: Path) -> list[ArticleData]:
    """Every article in `path` (.md, .csv, .tsv, .xlsx); ArticleFileError names a bad one."""
    if not path.is_file():
        raise ArticleFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return _from_markdown(path)
    if suffix in (".csv", ".tsv", ".txt", ".xlsx", ".xlsm"):
        return _from_table(path)
    raise ArticleFileError(f"{path}: unknown kind of file (use .md, .csv or .xlsx)")
