"""The key that signs console session cookies.

IVR_SECRET_KEY in the environment wins (set it, identical, on every web worker
and host). Without it the key is generated once and kept in
<storage_dir>/console-secret-key (mode 0600), so that every process on this host
and every restart signs cookies alike and operators stay signed in.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from ivr.config import Settings

SECRET_ENV = "IVR_SECRET_KEY"
KEY_FILE = "console-secret-key"


def secret_key(settings: Settings, env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    if env.get(SECRET_ENV):
        return env[SECRET_ENV]
    path = settings.storage_path / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
        fh.flush()
        os.fsync(fh.fileno())
    return _read(path)


def _read(path: Path) -> str:
    for _ in range(100):  # another process may be writing it right now
        key = path.read_text().strip()
        if len(key) >= 32:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path} holds no usable key: delete it and restart")
