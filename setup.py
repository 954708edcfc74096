"""Build hook: the top-level files the product ships go into the wheel as ivr/_defaults/.

config.yaml, callflows/ (flows and prompt clips) and asr_models/manifest.yaml stay
at the repository's top level, where the product layout puts them; a wheel only
installs packages, so build_py copies them into the package folder `ivr/_defaults/`
(found at run time by ivr.shipped). Editable installs skip the copy: they read the
files in the checkout. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED_FILES = ("config.yaml", "callflows", "asr_models/manifest.yaml")  # = ivr.shipped's


class BuildPyWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ivr" / "_defaults"
        shutil.rmtree(target, ignore_errors=True)  # no stale clips from an earlier build
        for name in SHIPPED_FILES:
            src, dst = ROOT / name, target / name
            if not src.exists():
                raise FileNotFoundError(f"{src}: shipped with the package but missing")
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildPyWithDefaults})
