"""Write tests/durations.json (seconds per test module) from a pytest JUnit XML report.

tests/conftest.py runs the costliest modules first, so that on pytest-xdist the run
does not end with one long module on one worker while the other idles:

    pytest -n 2 --dist worksteal --junitxml=/tmp/junit.xml
    python scripts/test_durations.py /tmp/junit.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "durations.json"


def module_seconds(report: Path) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).iter("testcase"):
        module = (case.get("classname") or "").split(".")
        name = next((m for m in module if m.startswith("test_")), None)
        if name:
            totals[name] += float(case.get("time") or 0)
    return dict(totals)


def main(reports: list[str]) -> None:
    totals: dict[str, float] = {}
    for report in reports:
        for module, seconds in module_seconds(Path(report)).items():
            totals[module] = max(totals.get(module, 0.0), seconds)
    ordered = dict(sorted(((m, round(s, 1)) for m, s in totals.items()), key=lambda kv: -kv[1]))
    OUT.write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(ordered)} modules, {sum(ordered.values()):.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
