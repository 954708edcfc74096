"""Child processes that are always cleaned up: own process group, timeout, logs on disk."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_LIVE: set[ManagedProcess] = set()  # strong refs: a dropped handle is still killed at exit
_PR_SET_PDEATHSIG = 1


# For daemons that fork workers (kamailio): PDEATHSIG reaches only the direct
# child, so that child is a shell which kills the whole group when it gets it.
_REAPER = ["/bin/sh", "-c", 'trap "kill -KILL 0" TERM HUP; "$@" & wait $!', "sipkit-reaper"]


def _die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """preexec_fn making the child get SIGKILL when this (main) thread dies, e.g. pytest -9.

    Linux only, and only from the main thread: PDEATHSIG fires when the *thread*
    that forked exits, and worker threads come and go.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


@dataclass(frozen=True)
class ProcessResult:
    """How a managed process ended."""

    argv: tuple[str, ...]
    returncode: int
    timed_out: bool
    stdout_path: Path
    stderr_path: Path
    duration: float

    @property
    def stdout(self) -> str:
        return _read(self.stdout_path)

    @property
    def stderr(self) -> str:
        return _read(self.stderr_path)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


class ManagedProcess:
    """A child in its own session (process group); stop() kills the whole group.

    stdout/stderr go to `<logdir>/<name>.out|.err`. Every live instance is also
    killed at interpreter exit, and (started from the main thread) gets SIGKILL
    if this process dies, so a failing or killed test run leaves no processes.
    `forks_workers` (kamailio) runs it under a shell that kills the whole group
    when this process dies, since the workers would not get the signal.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        logdir: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin_devnull: bool = True,
        forks_workers: bool = False,
    ) -> None:
        self.argv = tuple(str(a) for a in argv)
        command = [*_REAPER, *self.argv] if forks_workers else list(self.argv)
        self.name = name
        logdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logdir / f"{name}.out"
        self.stderr_path = logdir / f"{name}.err"
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self._started = time.monotonic()
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL if stdin_devnull else None,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGTERM if forks_workers else signal.SIGKILL),
            )
        self._timed_out = False
        self._result: ProcessResult | None = None
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> ProcessResult:
        """Wait up to `timeout` s; on expiry kill the group and mark the result timed out."""
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._timed_out = True
            self.stop()
        return self._finish()

    def send_signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 3.0, sig: int = signal.SIGTERM) -> ProcessResult:
        """Send `sig` to the group, then SIGKILL after `grace` s; always reaps the child."""
        if self.alive():
            self.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        # Children of the group may outlive the leader (kamailio workers).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        return self._finish()

    def _finish(self) -> ProcessResult:
        if self._result is None:
            rc = self.popen.poll()
            if rc is None:  # pragma: no cover - only if SIGKILL failed
                rc = -9
            self._result = ProcessResult(
                argv=self.argv,
                returncode=rc,
                timed_out=self._timed_out,
                stdout_path=self.stdout_path,
                stderr_path=self.stderr_path,
                duration=time.monotonic() - self._started,
            )
            _LIVE.discard(self)
        return self._result

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_process(
    argv: Sequence[str],
    *,
    name: str,
    logdir: Path,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcessResult:
    """Run to completion with a hard timeout (the process group is killed on expiry)."""
    proc = ManagedProcess(argv, name=name, logdir=logdir, cwd=cwd, env=env)
    try:
        return proc.wait(timeout)
    finally:
        proc.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` s pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def live_processes() -> list[ManagedProcess]:
    """Managed processes still running (a test can assert this is empty)."""
    return [p for p in list(_LIVE) if p.alive()]


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - exercised only on abnormal exits
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop(grace=0.5)
