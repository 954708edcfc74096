"""Benchmark: how right and how fast the intake drafts are.

    .venv/bin/python -m bench.intake [--config FILE] [--history 100000] [--out bench/results/intake]

- accuracy per field (category, department, urgency, scope) of the whole intake
  (model + config rules) on the corpus test split, and under 10/20/30 % simulated
  character error (homophones, ivr.intake.noise), with the category confusion matrix;
- intake time per statement (median, p99) and model load time and memory;
- `ivr intake train` time on N historical tickets. No city's history ships with the
  project, so they are SYNTHESIZED: the train split resampled with replacement, each
  copy perturbed (homophone substitutions at 10 % CER, a filler or two added, a
  character dropped), then trained like `ivr intake train --from` (k-fold included).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ivr.config import load_config
from ivr.intake.analyze import analyze
from ivr.intake.corpus import Example, corpus_files, corpus_hash, load_corpus
from ivr.intake.evaluate import FIELDS, evaluate, format_confusion
from ivr.intake.fitting import fit
from ivr.intake.model import default_model
from ivr.intake.noise import HomophoneChannel

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.0, 0.1, 0.2, 0.3)
FILLERS = ("那个", "就是", "嗯", "然后", "呃", "对对对", "我跟你说")


def _accuracy(settings: Any, model: Any, test: list[Example], seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    channel = HomophoneChannel(seed=seed)
    for level in LEVELS:
        texts, measured = (
            channel.corrupt_all([e.text for e in test], level) if level else (None, 0.0)
        )
        report = evaluate(settings, test, model=model, texts=texts)
        out[f"{level:.1f}"] = {
            "measured_cer": round(measured, 4),
            "accuracy": {k: round(v, 4) for k, v in report.accuracy().items()},
            "labelled": {f: report.labelled[f] for f in FIELDS},
        }
        if level == 0.0:
            out["confusion"] = format_confusion(report)
    return out


def _timing(settings: Any, model: Any, texts: list[str]) -> dict[str, float]:
    line = settings.line(settings.hotline)
    for t in texts[:20]:
        analyze(settings, t, line=line, model=model)
    times, cpu_times, model_times = [], [], []
    for t in texts:
        c0, t0 = time.thread_time(), time.perf_counter()
        analyze(settings, t, line=line, model=model)
        t1, c1 = time.perf_counter(), time.thread_time()
        model.predict_one(t)
        times.append((t1 - t0) * 1000)
        cpu_times.append((c1 - c0) * 1000)
        model_times.append((time.perf_counter() - t1) * 1000)
    p99 = int(0.99 * (len(times) - 1))
    times.sort()
    cpu_times.sort()
    model_times.sort()
    return {
        "statements": len(times),
        "median_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[p99], 2),
        # The thread's CPU time: what the wall time would be without other jobs on the cores.
        "cpu_median_ms": round(statistics.median(cpu_times), 2),
        "cpu_p99_ms": round(cpu_times[p99], 2),
        "model_median_ms": round(statistics.median(model_times), 2),
        "model_p99_ms": round(model_times[p99], 2),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


_LOAD = """
import resource, sys, time
t0 = time.perf_counter()
from ivr.intake.model import load
m = load(sys.argv[1])
m.predict_one("我家停水了")
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _load(path: Path) -> dict[str, float]:
    """Load time (imports, jieba's dictionary, first prediction) and peak RSS, fresh process."""
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _LOAD, str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append((float(out[0]), int(out[1]) / 1024))
    return {
        "load_s": round(statistics.median(r[0] for r in runs), 2),
        "rss_mb": round(statistics.median(r[1] for r in runs), 1),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }


def synthesize(train: list[Example], n: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    channel = HomophoneChannel(seed=seed)
    rows = []
    for _ in range(n):
        e = rng.choice(train)
        text, _ = channel.corrupt(e.text, 0.1)
        if rng.random() < 0.5:
            cut = rng.randrange(len(text) + 1)
            text = text[:cut] + rng.choice(FILLERS) + text[cut:]
        if len(text) > 8 and rng.random() < 0.3:
            cut = rng.randrange(len(text))
            text = text[:cut] + text[cut + 1 :]
        rows.append(Example(text, e.category, e.department, e.urgency, e.scope, "train"))
    return rows


def _train_history(config: Path, n: int, seed: int, folds: int) -> dict[str, Any]:
    train = [e for e in load_corpus() if e.split != "test"]
    rows = synthesize(train, n, seed)
    with tempfile.TemporaryDirectory() as tmp:
        history = Path(tmp) / "history.csv"
        with history.open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(["text", "category", "department", "urgent", "split"])
            for e in rows:
                out.writerow([e.text, e.category, e.department, e.urgency == "urgent", "train"])
        cfg = Path(tmp) / "config.yaml"
        text = config.read_text(encoding="utf-8")
        local = re.sub(r"(?m)^storage_dir:.*$", f"storage_dir: {tmp}/var", text, count=1)
        cfg.write_text(local, encoding="utf-8")
        # As on a running installation, the current model exists (here: the corpus model).
        default_model(Path(tmp) / "var")
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "ivr.cli", "--config", str(cfg), "intake", "train",
             "--from", str(history), "--folds", str(folds)],
            capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "tickets": n,
        "synthesized": "train split resampled, homophones at 10 % CER, fillers, dropped chars",
        "folds": folds,
        "seconds": round(seconds, 1),
        "child_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "output": proc.stdout.strip().splitlines(),
        "exit_code": proc.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/intake")
    args = parser.parse_args()

    settings = load_config(args.config, env={})
    rows = load_corpus()
    train = [e for e in rows if e.split != "test"]
    test = [e for e in rows if e.split == "test"]
    t0 = time.perf_counter()
    model = fit(train, "bench", {"source": "corpus"})
    first_use_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp))
        load = _load(path)

    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, 2 cores shared with other jobs",
        "corpus": {
            "files": [p.name for p in corpus_files()],
            "hash": corpus_hash(corpus_files()),
            "rows": len(rows),
            "train_dev": len(train),
            "test": len(test),
        },
        "default_model_training_s": round(first_use_s, 1),
        "accuracy": _accuracy(settings, model, test, args.seed),
        "intake_time": _timing(settings, model, [e.text for e in rows]),
        "model_load": load,
    }
    if args.history:
        result["train_history"] = _train_history(args.config, args.history, args.seed, args.folds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    acc = r["accuracy"]
    lines = [
        f"Corpus: {r['corpus']['rows']} statements ({r['corpus']['train_dev']} train+dev, "
        f"{r['corpus']['test']} test), hash {r['corpus']['hash']}.",
        "",
        "| simulated CER (measured) | " + " | ".join(FIELDS) + " |",
        "|---|" + "---|" * len(FIELDS),
    ]
    for level in LEVELS:
        row = acc[f"{level:.1f}"]
        cells = [f"{100 * row['accuracy'].get(f, 0):.1f} %" for f in FIELDS]
        lines.append(
            f"| {100 * level:.0f} % ({100 * row['measured_cer']:.1f} %) | "
            + " | ".join(cells)
            + " |"
        )
    t, m = r["intake_time"], r["model_load"]
    lines += [
        "",
        "Category confusion (rows: expected, columns: drafted):",
        "",
        "```",
        acc["confusion"],
        "```",
        "",
        f"Intake per statement (analyze: model, rules, address, phone numbers, summary): "
        f"median {t['median_ms']} ms, p99 {t['p99_ms']} ms ({t['statements']} statements; "
        f"CPU time median {t['cpu_median_ms']} ms, p99 {t['cpu_p99_ms']} ms; load average "
        f"{t['load_average'][0]}); "
        f"the model's part: median {t['model_median_ms']} ms, p99 {t['model_p99_ms']} ms. "
        f"Model: {m['file_mb']} MB file, load "
        f"{m['load_s']} s (imports + jieba + first prediction), {m['rss_mb']} MB peak RSS. "
        f"Default model trained from the corpus at first use in {r['default_model_training_s']} s.",
    ]
    if "train_history" in r:
        h = r["train_history"]
        lines.append(
            f"`ivr intake train` on {h['tickets']:,} synthesized tickets ({h['folds']}-fold): "
            f"{h['seconds']} s wall, {h['child_cpu_s']} s CPU, {h['peak_rss_mb']} MB peak RSS "
            f"(exit {h['exit_code']}; load average {h['load_average'][0]} before, "
            f"{h['load_average'][1]} after)."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
