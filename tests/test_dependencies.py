"""Runtime dependencies that need help on Python 3.12+ / setuptools 81+."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_cpca_loads_without_setuptools_or_pkg_resources() -> None:
    """cpca 0.5.5 imports pkg_resources; the intake gives it a stand-in (no setuptools)."""
    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoSetuptools(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pkg_resources", "setuptools"):
                    raise ImportError(f"{name} is not installed (test)")
                return None

        sys.meta_path.insert(0, NoSetuptools())
        from ivr.intake.address import _cpca

        cpca = _cpca()
        assert len(cpca.ad_2_addr_dict) > 3000
        assert "pkg_resources" not in sys.modules, "the stand-in was left behind"
        print(cpca.transform(["昆明市五华区人民路"]).iloc[0]["区"])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "五华区"


def test_an_existing_pkg_resources_entry_is_restored() -> None:
    code = textwrap.dedent(
        """
        import sys, types
        mine = types.ModuleType("pkg_resources")
        sys.modules["pkg_resources"] = mine
        from ivr.intake.address import _cpca
        _cpca()
        assert sys.modules["pkg_resources"] is mine
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
