"""Benchmark: the cost of in-band DTMF detection on the RTP receiver thread.

    .venv/bin/python -m bench.dtmf_inband [--reps 7] [--out FILE]

Calls whose peer offers no telephone-event have every received 20 ms frame run
through the Goertzel bank (ivr/transports/sip/dtmf.py) on the one receiver
thread. Reports the median time per frame over the test speech (harness/data)
and what that is as a share of one core at 30 and 60 such calls (50 frames per
second each).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from harness.data import SPEECH
from harness.sipkit.pcap import wav_to_ulaw
from ivr.asr import audio as g711
from ivr.transports.sip.dtmf import InbandDtmf

FRAME = 320  # 20 ms of 8 kHz 16-bit PCM


def frames() -> list[bytes]:
    pcm = b"".join(g711.ulaw2lin(wav_to_ulaw(p)) for p in sorted(SPEECH.rglob("*_8k_ulaw.wav")))
    return [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def per_frame_us(data: list[bytes], reps: int) -> float:
    runs = []
    for _ in range(reps):
        keys: list[str] = []
        detector = InbandDtmf(keys.append)
        t0 = time.perf_counter()
        for frame in data:
            detector.feed(frame)
        runs.append((time.perf_counter() - t0) / len(data) * 1e6)
        assert not keys, f"speech gave keys {keys}"
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("bench/results/dtmf-inband.json"))
    args = ap.parse_args()
    data = frames()
    us = per_frame_us(data, args.reps)
    result = {
        "frames": len(data),
        "audio_s": round(len(data) * 0.02, 1),
        "us_per_frame_median": round(us, 1),
        "core_share_30_calls": round(us * 50 * 30 / 1e6, 4),
        "core_share_60_calls": round(us * 50 * 60 / 1e6, 4),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
