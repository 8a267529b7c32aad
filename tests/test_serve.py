"""`bash deploy/local/serve.sh` as an operator runs it: a killed worker or Redis comes back, the
receiver exiting stops everything, and the local Redis keeps an append-only file.

The script runs from a copy of the repository whose `setup.sh` does nothing (the machine is
prepared already, and a test must not redo Docker networks or the Python environment), with
its own Redis port, app port and egress port, against the GitHub simulator.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI
from tests.harness import ROOT, free_port, service_env


class Serve:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.mark = 0

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def next(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first match of `pattern` in what serve.sh logged since the last match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := re.compile(pattern).search(self.text(), self.mark):
                self.mark = found.end()
                return found
            assert self.process.poll() is None or "exited" in pattern, self.text()[-3000:]
            time.sleep(0.05)
        raise AssertionError(f"serve.sh never logged {pattern!r}:\n{self.text()[-3000:]}")

    def pid(self, name: str) -> int:
        """The pid of `name` started next."""
        return int(self.next(rf"{name} started \(pid (\d+)\)").group(1))

    def started(self) -> dict[str, int]:
        """Once every process has started: each one's pid."""
        self.next("Starting worker")
        found = re.findall(r"serve.sh: (.+) started \(pid (\d+)\)", self.text())
        return {name: int(pid) for name, pid in found}


def copy_of_repository(target: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in files.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes((ROOT / name).read_bytes())
    (target / "deploy/local/setup.sh").write_text("exit 0  # prepared by the test session\n")
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


@pytest.fixture
def serve(
    docker_ready: None, github: GitHubSim, openai_fake: ScriptedOpenAI, tmp_path: Path
) -> Iterator[Serve]:
    repo = copy_of_repository(tmp_path / "repo")
    env = service_env("unused", github, openai_fake, EGRESS_PORT="3134", HOST="127.0.0.1",
                      PORT=str(free_port()), REDIS_PORT=str(free_port()))  # fmt: skip
    del env["REDIS_URL"]  # serve.sh starts its own
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", "deploy/local/serve.sh"],
            cwd=repo,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the whole service, cleaned up as one group
        )
    try:
        yield Serve(process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_killed_worker_or_redis_comes_back_and_the_receiver_stops_the_service(
    serve: Serve, tmp_path: Path
) -> None:
    pids = serve.started()
    redis, worker, app = pids["redis"], pids["worker"], pids["webhook receiver"]

    killed = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    serve.next(r"worker exited with status 137; restarting it in 1 s")
    worker = serve.pid("worker")
    serve.next("Starting worker")
    print(f"worker SIGKILLed: a new worker polls after {time.monotonic() - killed:.1f} s")

    os.kill(redis, signal.SIGKILL)
    serve.next(r"redis exited with status 137; restarting it in 1 s")
    redis = serve.pid("redis")
    time.sleep(2)  # the worker polls Redis every 0.1 s: it met the outage
    assert alive(worker) and alive(app), "a Redis restart ends neither the worker nor the app"
    files = {p.name for p in (tmp_path / "repo/var/redis").rglob("*")}
    assert "appendonly.aof.manifest" in files, files

    os.kill(app, signal.SIGKILL)
    serve.process.wait(60)
    serve.next(r"the webhook receiver \(pid \d+\) exited with status 137: stopping the service")
    assert serve.process.returncode != 0
    assert not alive(worker) and not alive(redis), "nothing of the service is left running"
