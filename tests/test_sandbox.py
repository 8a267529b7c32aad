"""The sandbox container itself on a real engine: locked down, limited, removed whatever happens."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import docker
import pytest

from tests.harness import SANDBOX_IMAGE
from worker.sandbox import disk
from worker.sandbox.containers import DockerSandbox, open_sandbox
from worker.sandbox.spec import SandboxError, SandboxSpec

SPEC = SandboxSpec(
    image=SANDBOX_IMAGE, memory="256m", cpus=0.5, pids=64, label="test:sandbox#hardening"
)


@pytest.fixture
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.from_env()


async def inspect_inside(engine: docker.DockerClient, checkout: Path) -> tuple[dict, str, str]:  # type: ignore[type-arg]
    async with open_sandbox(engine, SPEC) as sandbox:
        await sandbox.put_tree(checkout)
        config = engine.api.inspect_container(sandbox.name)
        inside = await sandbox.run(
            "id -u; grep -E '^(NoNewPrivs|CapEff|CapBnd):' /proc/self/status; "
            "ls /var/run/docker.sock 2>&1; stat -c %u hello.txt; ps -o comm= -p 1",
            timeout=30,
        )
        name = sandbox.name
    return config, inside.output, name


def test_the_sandbox_is_unprivileged_limited_and_gone_afterwards(
    engine: docker.DockerClient, tmp_path: Path
) -> None:
    (tmp_path / "hello.txt").write_text("hi\n")
    config, inside, name = asyncio.run(inspect_inside(engine, tmp_path))
    host = config["HostConfig"]

    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] == 64
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024 * 1024, "no swap beyond the limit"
    assert host["NanoCpus"] == 500_000_000
    assert host["Init"] is True
    assert host["NetworkMode"] == "none"
    assert not host.get("Binds") and not config["Mounts"], "nothing of the host is mounted"
    assert not host["Privileged"]

    lines = inside.splitlines()
    assert lines[0] == "1000", "commands run as the unprivileged user"
    assert "NoNewPrivs:\t1" in lines
    assert "CapEff:\t0000000000000000" in lines and "CapBnd:\t0000000000000000" in lines
    assert "No such file" in inside, "no Docker socket inside"
    assert lines[-2] == "1000", "the checkout belongs to the sandbox user"
    assert lines[-1] in ("docker-init", "tini"), "an init reaps stray processes"

    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(name)


def test_the_container_is_removed_when_the_work_fails(
    engine: docker.DockerClient,
) -> None:
    seen: list[DockerSandbox] = []

    async def fail_inside() -> None:
        async with open_sandbox(engine, SPEC) as sandbox:
            seen.append(sandbox)
            raise RuntimeError("the agent blew up")

    with pytest.raises(RuntimeError, match="blew up"):
        asyncio.run(fail_inside())
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(seen[0].name)


def test_a_fork_bomb_stops_at_the_pids_limit(engine: docker.DockerClient) -> None:
    async def bomb() -> str:
        async with open_sandbox(engine, SPEC) as sandbox:
            result = await sandbox.run(
                # Only shell builtins after the loop: at the limit nothing else can start.
                "(for i in $(seq 200); do sleep 30 >/dev/null & done) 2>/tmp/err; "
                'while read -r line; do last=$line; done </tmp/err; echo "$last"; '
                "n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; echo running=$n",
                timeout=30,
            )
            return result.output

    output = asyncio.run(bomb())
    running = int(output.rsplit("running=", 1)[1].split()[0])
    assert running <= 64, output
    assert "fork" in output.lower() or "resource" in output.lower(), output


def test_output_comes_back_exact_with_its_exit_code(engine: docker.DockerClient) -> None:
    """Every command ends with an end line the sandbox strips (it tells a lost output from an
    empty one); what the command printed comes back byte for byte."""
    blob = bytes(range(256)) * 4

    async def commands() -> tuple[list[tuple[str, int]], bytes | None, bytes | None]:
        async with open_sandbox(engine, SPEC) as sandbox:
            await sandbox.write_files({"blob.bin": blob})
            runs = []
            for command in ("printf abc", "true", "echo out; exit 3", "echo err >&2"):
                result = await sandbox.run(command, timeout=30)
                runs.append((result.output, result.exit_code))
            return runs, await sandbox.read_file("blob.bin"), await sandbox.read("false", limit=99)

    runs, read, failed = asyncio.run(commands())
    assert runs == [("abc", 0), ("", 0), ("out\n", 3), ("err\n", 0)]
    assert read == blob, "binary content without a final newline, exact"
    assert failed is None, "a read whose command fails gives nothing"


def test_a_sandbox_that_fills_the_disk_is_stopped_and_says_why(engine: docker.DockerClient) -> None:
    spec = SandboxSpec(image=SANDBOX_IMAGE, memory="256m", cpus=0.5, pids=64, disk=20 << 20,
                       label="test:sandbox#disk")  # fmt: skip

    async def fill() -> tuple[str, float, bool]:
        async with open_sandbox(engine, spec) as sandbox:
            small = await sandbox.run("head -c 1000000 /dev/zero > /tmp/small; echo ok", timeout=30)
            assert small.output.strip() == "ok", "writing under the limit works"
            started = time.monotonic()
            with pytest.raises(SandboxError) as stopped:
                await sandbox.run("head -c 100000000 /dev/zero > /tmp/big; sleep 60", timeout=90)
            name = sandbox.name
        gone = not engine.containers.list(all=True, filters={"name": name})
        return str(stopped.value), time.monotonic() - started, gone

    reason, seconds, gone = asyncio.run(fill())
    print(f"stopped {seconds:.1f} s after writing 100 MB over a 20 MB limit")
    assert "disk limit (20 MB, `SANDBOX_DISK`)" in reason, reason
    assert seconds < 15 and gone


@pytest.mark.parametrize(
    ("text", "size"), [("10g", 10 << 30), ("512m", 512 << 20), ("2GiB", 2 << 30), ("0", 0)]
)
def test_disk_sizes_are_read_as_operators_write_them(text: str, size: int) -> None:
    assert disk.parse_size(text) == size


def test_quotas_are_used_only_where_the_storage_driver_has_them() -> None:
    ext4 = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}
    xfs = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "xfs"]]}
    assert not disk.has_quotas(ext4) and disk.has_quotas(xfs) and disk.has_quotas({"Driver": "zfs"})
