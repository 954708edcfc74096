"""The built wheel installs anywhere (issue 12, item 7).

A copy of the source tree is built into a wheel, the wheel is installed into a
fresh venv (its dependencies come from the index / pip's cache, pinned to the
versions this interpreter runs), and from an EMPTY folder the installed `ivr`
runs `ivr init`, `ivr check`, `ivr db upgrade` and `ivr simulate` and serves the
console's templates and static files. Slow: about 1-2 minutes (venv + install).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATEMENT = "我要投诉五华区人民路的烧烤摊晚上太吵了"
# Environment that would make the installed `ivr` look at this checkout or its services.
_LEAKY_ENV = ("IVR_CONFIG", "DATABASE_URL", "REDIS_URL", "IVR_ASR_MANIFEST", "PYTHONPATH")


def _run(argv: list[str], cwd: Path, timeout: float = 600, **kw: object) -> str:
    out = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )  # type: ignore[call-overload]
    assert out.returncode == 0, f"{argv} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return str(out.stdout)


def _source_files() -> list[str]:
    """The files a clone has: tracked plus untracked-but-not-ignored (no venvs, var/, models)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (ROOT / f).is_file()]


def _files_under(folder: str) -> set[str]:
    base = ROOT / folder
    return {
        p.relative_to(ROOT).as_posix()
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is needed to copy the source tree (it is a system dependency)")
    src = tmp_path_factory.mktemp("src") / "hotline-ivr"
    for name in _source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        cwd=dist,
    )
    (built,) = dist.glob("hotline_ivr-*.whl")
    return built


def test_wheel_holds_everything_serve_needs(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        # The console's templates and static files.
        *_files_under("webhooks/console/templates"),
        *_files_under("webhooks/console/static"),
        # Alembic: env.py, the script template and every revision.
        *_files_under("ivr/store/migrations"),
    }
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing[:10]}"
    # Every file of the two packages (a new data file needs a package-data line).
    missing = sorted(
        f for f in _source_files() if f.startswith(("ivr/", "webhooks/")) and f not in names
    )
    assert not missing, f"not in the wheel (pyproject.toml package-data?): {missing[:10]}"
    shipped = {
        "ivr/_defaults/" + f
        for f in {"config.yaml", "asr_models/manifest.yaml", *_files_under("callflows")}
    }
    missing = sorted(shipped - names)
    assert not missing, f"not in the wheel: {missing[:10]}"
    assert {"ivr/_defaults/callflows/inbound.yaml", "ivr/_defaults/callflows/survey.yaml"} <= names
    clips = [n for n in names if re.match(r"ivr/_defaults/callflows/prompts/\w+\.wav$", n)]
    assert len(clips) > 50, clips
    assert any(n.endswith("console/templates/console/base.html") for n in names)
    # Nothing of the test or bench trees, and no top-level loose files.
    assert not [n for n in names if n.startswith(("tests/", "bench/", "config.yaml"))]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no site packages) with the wheel installed; returns its bin/ folder."""
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True, symlinks=True).create(home)
    bin_dir = home / "bin"
    # Same dependency versions as the environment running the tests: pip then takes
    # them from its cache instead of resolving and downloading the newest.
    pins = home / "constraints.txt"
    dists = {
        d.metadata["Name"].lower(): d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower() not in ("hotline-ivr", "pip")
    }
    pins.write_text("".join(f"{n}=={v}\n" for n, v in sorted(dists.items())))
    quiet = ["--disable-pip-version-check", "-c", str(pins)]
    _run(
        # --no-compile: byte-compiling scipy, sklearn and pandas is most of an install's time.
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-compile", *quiet, str(wheel)],
        cwd=home,
        timeout=1200,
    )
    return bin_dir


def _env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    return env


def test_installed_wheel_runs_from_an_empty_folder(
    installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("deployment")
    assert not any(work.iterdir())
    env = _env(installed)
    ivr = str(installed / "ivr")

    python = str(installed / "python")
    where = _run([python, "-c", "import ivr; print(ivr.__file__)"], work, env=env)
    assert where.strip().startswith(str(installed.parent)), where  # not this checkout
    assert not where.strip().startswith(str(ROOT))

    # Before init: a clear error, not the checkout's config.
    out = subprocess.run(
        [ivr, "check"], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0 and "ivr init" in out.stderr, out.stderr

    out_init = _run([ivr, "init"], work, env=env)
    assert "Next steps" in out_init and "ivr db upgrade" in out_init
    assert (work / "config.yaml").is_file() and (work / "var").is_dir()
    assert (work / "callflows" / "inbound.yaml").is_file()
    refused = subprocess.run(
        [ivr, "init"], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "--force" in refused.stderr

    check = _run([ivr, "check"], work, env=env)
    assert "config ok" in check and "prompt audio ok" in check
    assert "database is up to date" in _run([ivr, "db", "upgrade"], work, env=env)
    assert (work / "var" / "ivr.sqlite3").is_file()

    call = ["simulate", "--line", "12345", "--from", "13800138000", "--digits", "2"]
    sim = _run([ivr, *call, "--text", STATEMENT], work, env=env)
    assert re.search(r"工单 12345-\d{8}-\d{5}\s+\[draft\]", sim), sim
    assert f"statement  {STATEMENT}" in sim
    assert "category   投诉" in sim

    models = _run([ivr, "models", "list"], work, env=env)
    assert "vosk-model-small-cn-0.22" in models  # the manifest shipped in the wheel

    # The console renders its templates and serves its static files from the package.
    probe = (
        "from ivr.app import Hotline\n"
        "from ivr.config import load_config\n"
        "from webhooks import create_app\n"
        "client = create_app(Hotline.open(load_config())).test_client()\n"
        "page = client.get('/console/login')\n"
        "assert page.status_code == 200 and b'<form' in page.data, page.status_code\n"
        "css = client.get('/console/static/console.css')\n"
        "assert css.status_code == 200 and len(css.data) > 100, css.status_code\n"
        "print('console ok')\n"
    )
    assert "console ok" in _run([python, "-c", probe], work, env=env)
