"""Operations reports for supervisors: volumes, 满意率 by department and week, overdue
tickets and the words complaints use most. Plain data; the console draws the charts."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ivr.reports.surveys import report_by, week_of
from ivr.store.models import Call, Ticket, TicketStatus

if TYPE_CHECKING:
    from ivr.app import Hotline

# Tickets still being worked on: their deadline can pass.
OPEN_STATUSES = (
    TicketStatus.DRAFT,
    TicketStatus.REGISTERED,
    TicketStatus.RETURNED,
    TicketStatus.REHANDLE,
)
COMPLAINT = "投诉"
_WORD = re.compile(r"^[\u4e00-\u9fff]{2,}$")
# Words every statement has: they say nothing about what the complaint is.
STOPWORDS = frozenset(
    [
        "我要",
        "投诉",
        "我们",
        "你们",
        "他们",
        "这个",
        "那个",
        "一个",
        "没有",
        "现在",
        "已经",
        "每天",
        "还是",
        "就是",
        "可以",
        "时候",
        "什么",
        "怎么",
        "因为",
        "所以",
        "但是",
        "而且",
        "希望",
        "一下",
        "这里",
        "那里",
        "这样",
        "问题",
        "情况",
        "反映",
        "处理",
        "请问",
        "谢谢",
        "您好",
        "你好",
        "那边",
        "这边",
        "一直",
        "还有",
        "然后",
        "不是",
        "知道",
        "觉得",
        "自己",
        "大家",
        "他们",
        "如果",
        "的话",
    ]
)


@dataclass(frozen=True)
class Period:
    """Local days, both inclusive."""

    start: date
    end: date

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def utc_bounds(self, app: Hotline) -> tuple[datetime, datetime]:
        tz = app.settings.tz
        return (
            datetime.combine(self.start, time(), tz),
            datetime.combine(self.end + timedelta(days=1), time(), tz),
        )


@dataclass
class Table:
    """A report table: what the charts draw and the CSV/Excel exports contain."""

    title: str
    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def _local_day(app: Hotline, at: datetime) -> date:
    return at.astimezone(app.settings.tz).date()


def volumes(app: Hotline, period: Period) -> Table:
    """Inbound calls and tickets per line per local day."""
    lo, hi = period.utc_bounds(app)
    counts: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
    with app.db.read() as s:
        for started, line in s.execute(
            select(Call.started_at, Call.line_number).where(
                Call.direction == "inbound", Call.started_at >= lo, Call.started_at < hi
            )
        ):
            counts[(_local_day(app, started), line)][0] += 1
        for created, line in s.execute(
            select(Ticket.created_at, Ticket.line_number).where(
                Ticket.created_at >= lo, Ticket.created_at < hi
            )
        ):
            counts[(_local_day(app, created), line)][1] += 1
    rows = [[day.isoformat(), line, c[0], c[1]] for (day, line), c in sorted(counts.items())]
    return Table("来电与工单（按热线、日期）", ["日期", "热线", "来电", "工单"], rows)


def satisfaction_by_department_week(app: Hotline) -> Table:
    """满意率 and the counts behind it, per department and ISO week of completion."""
    tz = app.settings.tz
    rows = report_by(app, lambda _a, t: f"{t.department}\t{week_of(t, tz)}")
    out = []
    for r in rows:
        department, week = r.group.split("\t")
        rate = None if r.satisfaction_rate is None else round(r.satisfaction_rate, 4)
        out.append([department, week, r.tickets, r.responses, rate])
    return Table("满意率（按部门、周）", ["部门", "周", "回访工单", "有效评价", "满意率"], out)


def overdue(app: Hotline, today: date) -> Table:
    """Open tickets whose handling deadline has passed, oldest deadline first."""
    with app.db.read() as s:
        tickets = s.scalars(
            select(Ticket)
            .where(Ticket.status.in_(OPEN_STATUSES), Ticket.due_date < today)
            .order_by(Ticket.due_date, Ticket.id)
        ).all()
        rows = [
            [
                t.number,
                t.department,
                t.category,
                t.status,
                t.due_date.isoformat(),
                (today - t.due_date).days,
            ]
            for t in tickets
        ]
    return Table("超期工单", ["工单号", "部门", "类别", "状态", "办理时限", "超期天数"], rows)


def overdue_by_department(table: Table) -> Counter[str]:
    return Counter(row[1] for row in table.rows)


@cache
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


# Parts of speech that name what a complaint is about (jieba's tags): nouns, verbal and
# adjectival nouns, verbs, adjectives. Time words (早上), place names, person names,
# conjunctions (不管), adverbs and pronouns say nothing about it.
TOPIC_TAGS = frozenset({"n", "nz", "ng", "vn", "an", "v", "a", "l", "i"})


def keywords(
    texts: list[str],
    top: int = 20,
    stop: frozenset[str] = STOPWORDS,
    places: list[str] | None = None,
) -> list[tuple[str, int]]:
    """The most frequent topic words (two or more Chinese characters, not stopwords, not
    part of the statement's address: 青年 of 青年路 is a place, not a complaint)."""
    _jieba()
    from jieba import posseg

    counts: Counter[str] = Counter()
    for i, text in enumerate(texts):
        place = (places[i] if places else "") or ""
        # A word counts once per statement: one caller repeating it is not a trend.
        counts.update(
            {
                p.word
                for p in posseg.cut(text)
                if p.flag in TOPIC_TAGS
                and _WORD.match(p.word)
                and p.word not in stop
                and p.word not in place
            }
        )
    return counts.most_common(top)


def complaint_keywords(app: Hotline, period: Period, top: int = 20) -> Table:
    lo, hi = period.utc_bounds(app)
    with app.db.read() as s:
        found = s.execute(
            select(Ticket.statement, Ticket.address).where(
                Ticket.category == COMPLAINT,
                Ticket.created_at >= lo,
                Ticket.created_at < hi,
                Ticket.statement != "",
            )
        ).all()
    texts = [statement for statement, _ in found]
    places = [(address or {}).get("text") or "" for _, address in found]
    dup = app.settings.duplicates
    stop = STOPWORDS | set(dup.stop_words) | set(dup.extra_stop_words)
    rows: list[list[Any]] = [[w, n] for w, n in keywords(texts, top, stop, places)]
    return Table("投诉高频词", ["词语", "工单数"], rows)
