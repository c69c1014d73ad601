"""The real `openstack` CLI, with its start-up paid once per test worker.

Each `openstack` process spends about 1.2 s of CPU importing python-openstackclient,
openstacksdk, keystoneauth and cliff before it sends a request; the call itself costs about 0.2 s.
Most end-to-end tests make dozens of calls, so the imports were most of the suite's CPU time.

Run as a script, this module is a small fork server: it imports the CLI's modules once, then for
every command it is sent it forks a fresh child process that runs `openstackclient.shell.main`,
the function the `openstack` console script calls, with the given arguments and environment and
its own stdout and stderr. Plugins, clouds.yaml, authentication and the requests all happen in
the child, exactly as in a new `openstack` process. The fork server itself is single-threaded,
so forking it is safe.

tests/e2e/test_smoke_cli.py still runs the `openstack` executable itself, so a broken
console script or entry point cannot hide behind this.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from typing import IO, Any


class WarmCli:
    """A client of one fork server, started on first use. Calls from several threads take turns."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        request = json.dumps({"argv": argv, "env": env, "timeout": timeout})
        with self._lock:
            process = self._started()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(request + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except BaseException:
                # Interrupted (a test timeout, say): its answer would be taken for the next call's.
                process.kill()
                process.wait()
                self._process = None
                raise
        if not line:
            raise RuntimeError("the warm openstack CLI server stopped")
        answer = json.loads(line)
        if answer["timed_out"]:
            raise subprocess.TimeoutExpired(["openstack", *argv], timeout, answer["stdout"], answer["stderr"])
        return subprocess.CompletedProcess(
            ["openstack", *argv], answer["returncode"], answer["stdout"], answer["stderr"]
        )

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(10)
            self._process = None

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        return self._process


# ---- the fork server ------------------------------------------------------------------------------


def _serve(requests: IO[str], answers: IO[str]) -> None:
    # cliff takes the program's name (in messages, --version, help) from argv[0] when imported.
    sys.argv = [os.path.join(os.path.dirname(sys.executable), "openstack")]
    # What every command needs anyway, imported once here rather than in each child.
    import openstack.image.v2._proxy  # noqa: F401
    import openstackclient.identity.v3.token
    import openstackclient.image.v2.image  # noqa: F401
    from openstackclient import shell

    for line in requests:
        request = json.loads(line)
        answers.write(json.dumps(_fork_and_run(shell.main, request)) + "\n")
        answers.flush()


def _fork_and_run(main: Any, request: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            _child(main, request, out.fileno(), err.fileno())
        returncode, timed_out = _wait(pid, float(request["timeout"]))
        out.seek(0)
        err.seek(0)
        return {
            "returncode": returncode,
            "timed_out": timed_out,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def _child(main: Any, request: dict[str, Any], out: int, err: int) -> None:
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [sys.argv[0], *request["argv"]]
        code = main(request["argv"]) or 0
    except SystemExit as exit_:
        # As the interpreter treats it: None is success, any other non-integer is printed.
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """The child's exit code, and whether it had to be killed for running past `timeout`."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    return os.waitstatus_to_exitcode(status), not ready


if __name__ == "__main__":
    _serve(sys.stdin, sys.stdout)
