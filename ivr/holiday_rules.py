"""The statutory public holidays of a year, computed from the national holiday rules.

For years whose State Council notice chinesecalendar does not ship. Under the
2025 revision of 全国年节及纪念日放假办法: 元旦 1 day; 春节 4 days (除夕 and 正月初一
to 初三); 清明 1 day; 劳动节 2 days (5-1, 5-2); 端午 1 day; 中秋 1 day; 国庆 3 days
(10-1 to 10-3). The `holidays` package applies the rules in force each year and
computes the lunar dates and the 清明 solar term. Its "observed" days (a holiday
on a weekend moved to the next weekday) are its own guess, not Chinese law, and
its substituted days come from notices: both are left out.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

STATUTORY = ("元旦", "农历除夕", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")
_ESTIMATED_SUFFIX = "（推定）"


@lru_cache(maxsize=32)
def statutory_holidays(year: int) -> tuple[tuple[date, str], ...]:
    """(day, name) of each statutory holiday of `year`, in date order."""
    import holidays  # only needed for years beyond chinesecalendar's

    cn = holidays.country_holidays("CN", years=year, observed=False, language="zh_CN")
    out = []
    for day, names in sorted(cn.items()):
        kept = [
            n.removesuffix(_ESTIMATED_SUFFIX)
            for n in names.split("; ")
            if n.removesuffix(_ESTIMATED_SUFFIX) in STATUTORY
        ]
        if kept:
            out.append((day, "、".join(kept)))
    return tuple(out)
