"""The files the product ships beside the code: config.yaml, callflows/, the model manifest.

In the repository they live at the top level (config.yaml, callflows/,
asr_models/manifest.yaml). A built wheel carries copies of them in the package
folder `ivr/_defaults/` (setup.py's build hook), because nothing outside a
package is installed into site-packages. `shipped()` finds them in either place:
the source tree when `ivr` runs from one (a checkout or an editable install),
otherwise the installed copy.
"""

from __future__ import annotations

from pathlib import Path

# The repository root when ivr/ is imported from a source tree (site-packages otherwise).
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
# Where a built wheel installs the copies (see setup.py).
PACKAGED = Path(__file__).resolve().parent / "_defaults"
# What the build hook copies, relative to the repository root.
SHIPPED_FILES = ("config.yaml", "callflows", "asr_models/manifest.yaml")


def source_root() -> Path | None:
    """The repository root when running from a source tree, else None (installed wheel)."""
    root = _SOURCE_ROOT
    if (root / "pyproject.toml").is_file() and (root / "config.yaml").is_file():
        return root
    return None


def shipped(relpath: str) -> Path:
    """A shipped file or folder (e.g. "config.yaml", "callflows"), wherever it is installed."""
    root = source_root()
    return (root if root is not None else PACKAGED) / relpath
