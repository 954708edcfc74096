"""Report charts drawn on the server as SVG with matplotlib (no browser-side library).

Text stays text in the SVG (svg.fonttype none): small files, searchable, and the
browser renders the Chinese with its own CJK font. The CJK font matplotlib uses
to measure text is the Debian fonts-wqy-microhei (scripts/system-deps.sh).
"""

from __future__ import annotations

import io
from collections import defaultdict

from matplotlib import rcParams
from matplotlib.figure import Figure

from ivr.reports.operations import Table

rcParams["font.sans-serif"] = [
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "DejaVu Sans",
]
rcParams["font.family"] = "sans-serif"
rcParams["axes.unicode_minus"] = False
rcParams["svg.fonttype"] = "none"
rcParams["svg.hashsalt"] = "hotline-ivr"  # the same data gives the same SVG

WIDTH, HEIGHT = 8.0, 3.6


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline in the page: no XML prolog


def _empty(ax: object, message: str = "暂无数据") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)  # type: ignore[attr-defined]
    ax.set_axis_off()  # type: ignore[attr-defined]


def volumes_chart(table: Table, days: list[str]) -> str:
    """Calls (solid) and tickets (dashed) per line per day."""
    fig = Figure(figsize=(WIDTH, HEIGHT))
    ax = fig.subplots()
    calls: dict[str, dict[str, int]] = defaultdict(dict)
    tickets: dict[str, dict[str, int]] = defaultdict(dict)
    for day, line, n_calls, n_tickets in table.rows:
        calls[line][day] = n_calls
        tickets[line][day] = n_tickets
    if not table.rows:
        _empty(ax)
    x = range(len(days))
    for i, line in enumerate(sorted(calls)):
        color = f"C{i % 10}"
        ax.plot(
            x, [calls[line].get(d, 0) for d in days], color=color, marker="o", label=f"{line} 来电"
        )
        ax.plot(
            x,
            [tickets[line].get(d, 0) for d in days],
            color=color,
            linestyle="--",
            label=f"{line} 工单",
        )
    if table.rows:
        step = max(1, len(days) // 10)
        ax.set_xticks(list(x)[::step], [d[5:] for d in days][::step])
        ax.set_ylabel("数量")
        ax.yaxis.get_major_locator().set_params(integer=True)
        # Beside the plot, not over the lines.
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.grid(alpha=0.3)
    ax.set_title(table.title)
    return _svg(fig)


def satisfaction_chart(table: Table) -> str:
    """满意率 per week, one line per department."""
    fig = Figure(figsize=(WIDTH, HEIGHT))
    ax = fig.subplots()
    weeks = sorted({r[1] for r in table.rows})
    by_dept: dict[str, dict[str, float]] = defaultdict(dict)
    for dept, week, _tickets, _responses, rate in table.rows:
        if rate is not None:
            by_dept[dept][week] = rate * 100
    if not by_dept:
        _empty(ax)
    for dept in sorted(by_dept):
        points = [(i, by_dept[dept][w]) for i, w in enumerate(weeks) if w in by_dept[dept]]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=dept)
    if by_dept:
        ax.set_xticks(range(len(weeks)), weeks)
        ax.set_ylim(0, 105)
        ax.set_ylabel("满意率 %")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.grid(alpha=0.3)
    ax.set_title(table.title)
    return _svg(fig)


def bar_chart(title: str, counts: list[tuple[str, int]], xlabel: str) -> str:
    """Horizontal bars, largest on top (overdue per department, complaint words)."""
    fig = Figure(figsize=(WIDTH, max(2.0, 0.3 * len(counts) + 1.0)))
    ax = fig.subplots()
    if not counts:
        _empty(ax)
    else:
        labels = [c[0] for c in counts][::-1]
        values = [c[1] for c in counts][::-1]
        bars = ax.barh(labels, values, color="C3")
        ax.bar_label(bars, padding=2, fontsize="small")
        ax.set_xlabel(xlabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title)
    return _svg(fig)


def indicators_chart(title: str, groups: list[str], rates: dict[str, list[float | None]]) -> str:
    """Each indicator's rate (a bar per indicator) per group."""
    fig = Figure(figsize=(WIDTH, HEIGHT))
    ax = fig.subplots()
    if not groups:
        _empty(ax)
    else:
        width = 0.8 / max(1, len(rates))
        for i, (name, values) in enumerate(rates.items()):
            xs = [g + i * width for g in range(len(groups))]
            ax.bar(xs, [v or 0 for v in values], width=width, label=name, color=f"C{i % 10}")
        ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, rotation=30)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.grid(alpha=0.3, axis="y")
    ax.set_title(title)
    return _svg(fig)
