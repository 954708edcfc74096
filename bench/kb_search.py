"""Benchmark: knowledge-base search — how often the right article is in the top three,
and how fast search is over 10,000 articles, on SQLite (FTS5) and PostgreSQL.

    .venv/bin/python -m bench.kb_search [--articles 10000] [--db sqlite,postgres] [--repeat 3]

- Relevance: bench/data/kb-questions.tsv (questions in callers' words, each with the
  example article that answers it; written without looking at search results) against
  the 57 example articles alone, and again with the synthetic articles beside them.
- Speed: the questions searched round-robin (top 3, articles valid today), median and
  p99 per search over `--searches` searches, after a warm-up. With --repeat N each database
  is measured N times (a fresh database each time) and the summary gives the median run's
  figures; the load average before and after each run tells how busy the machine was.
Synthetic articles: example articles' sentences shuffled into new articles under
numbered titles (so they share the real articles' words and compete with them).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from ivr.app import Hotline
from ivr.clock import SystemClock
from ivr.config import load_config
from ivr.kb.importer import ArticleData, read_articles
from ivr.queries.kb import search
from ivr.services import Actor
from ivr.services.kb import import_articles
from ivr.store import upgrade

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "ivr" / "kb" / "examples" / "kunming-examples.md"
QUESTIONS = ROOT / "bench" / "data" / "kb-questions.tsv"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ACTOR = Actor.system("bench")


def questions() -> list[tuple[str, str]]:
    with QUESTIONS.open(encoding="utf-8") as f:
        return [(r["question"], r["title"]) for r in csv.DictReader(f, delimiter="\t")]


def synthetic(examples: list[ArticleData], n: int, seed: int = 7) -> list[ArticleData]:
    rng = random.Random(seed)
    sentences = [s + "。" for a in examples for s in a.body.split("。") if s.strip()]
    out = []
    for i in range(n):
        base = rng.choice(examples)
        body = "".join(rng.sample(sentences, k=min(4, len(sentences))))
        keywords = tuple(rng.sample(base.keywords, k=min(2, len(base.keywords))))
        title = f"{base.title}相关问答第{i + 1}号"
        out.append(ArticleData(title, body, base.department, keywords, source="bench"))
    return out


def top3_share(app: Hotline, qs: list[tuple[str, str]], day: date) -> dict[str, Any]:
    first = top3 = 0
    misses = []
    with app.db.read() as s:
        for question, title in qs:
            found = [h.article.title for h in search(s, question, day, 3)]
            first += bool(found) and found[0] == title
            top3 += title in found
            if title not in found:
                misses.append({"question": question, "want": title, "got": found})
    return {
        "questions": len(qs),
        "top1": round(first / len(qs), 3),
        "top3": round(top3 / len(qs), 3),
        "misses": misses,
    }


def timings(app: Hotline, qs: list[tuple[str, str]], day: date, n: int) -> dict[str, float]:
    times = []
    with app.db.read() as s:
        for q, _ in qs[:10]:  # warm-up: jieba, caches, the database's pages
            search(s, q, day, 3)
        for i in range(n):
            t = time.perf_counter()
            search(s, qs[i % len(qs)][0], day, 3)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "searches": n,
        "median_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
    }


def run(db: str, n_articles: int, searches: int, tmp: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    settings = load_config(ROOT / "config.yaml", env={})
    pg_name = None
    if db == "postgres":
        pg_name = f"ivr_bench_kb_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
    else:
        url = f"sqlite:///{tmp / 'kb.sqlite3'}"
    try:
        upgrade(url)
        settings = settings.model_copy(update={"database_url": url, "storage_dir": tmp / "var"})
        app = Hotline.open(settings, SystemClock())
        day = app.today()
        examples = read_articles(EXAMPLES)
        import_articles(app, ACTOR, examples, EXAMPLES.name)
        qs = questions()
        alone = top3_share(app, qs, day)
        t = time.perf_counter()
        extra = synthetic(examples, n_articles)
        for i in range(0, len(extra), 1000):
            import_articles(app, ACTOR, extra[i : i + 1000], "bench")
        load_s = time.perf_counter() - t
        crowded = top3_share(app, qs, day)
        speed = timings(app, qs, day, searches)
        app.close()
        return {
            "db": db,
            "articles": len(examples) + len(extra),
            "import_s": round(load_s, 1),
            "relevance_examples_only": alone,
            "relevance_with_synthetic": crowded,
            "speed": speed,
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        }
    finally:
        if pg_name:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()


def summary(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per database: the median over runs of each figure."""
    out = {}
    for db in dict.fromkeys(r["db"] for r in results):
        runs = [r for r in results if r["db"] == db]
        out[db] = {
            "runs": len(runs),
            "median_ms": statistics.median(r["speed"]["median_ms"] for r in runs),
            "p99_ms": statistics.median(r["speed"]["p99_ms"] for r in runs),
            "top3_examples_only": statistics.median(
                r["relevance_examples_only"]["top3"] for r in runs
            ),
            "top3_with_synthetic": statistics.median(
                r["relevance_with_synthetic"]["top3"] for r in runs
            ),
            "import_s": statistics.median(r["import_s"] for r in runs),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--articles", type=int, default=10_000)
    p.add_argument("--searches", type=int, default=2000)
    p.add_argument("--db", default="sqlite,postgres")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb-search.json")
    a = p.parse_args()
    results = []
    for _ in range(a.repeat):
        for db in a.db.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                r = run(db, a.articles, a.searches, Path(tmp))
            results.append(r)
            rel, crowd, speed = (
                r["relevance_examples_only"],
                r["relevance_with_synthetic"],
                r["speed"],
            )
            print(
                f"{db}: {r['articles']} articles; right article in top 3: {rel['top3']:.0%} "
                f"(examples only), {crowd['top3']:.0%} (with synthetic); "
                f"search median {speed['median_ms']} ms, p99 {speed['p99_ms']} ms; "
                f"load average {r['load_average'][0]} -> {r['load_average'][1]}"
            )
    doc = {
        "machine": platform.uname()._asdict(),
        "when": time.strftime("%F %T"),
        "summary": summary(results),
        "runs": results,
    }
    a.out.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
