"""Many workers for the fleet tests and the benchmarks: an app and N workers on a Redis of their
own, and a second Docker engine on this machine for workers that must not share one.

The second engine is a real `dockerd` with its own data root, exec root, socket and config
file (none of `/etc/docker/daemon.json`), listening on a Unix socket (for the tests' own use)
and on `tcp://127.0.0.1:PORT` with TLS and client certificates (`--tlsverify`), which is how a
worker on another host reaches an engine; it is started with a bridge of its own, `--iptables=false
--ip-forward=false --ip-masq=false --ip6tables=false` (a `--bridge=none` dockerd deletes the
host's `docker0`): it writes no firewall rule, so it cannot fight the main engine over
`docker0`, the `codex-*` bridges or the iptables chains `deploy/docker/sandbox-network.sh`
keeps. Its sandboxes therefore have no network at all (the default `network.agent: off`; setup
runs without one, as it says), which is what a second host would have before its operator ran
`sandbox-network.sh` there. It is stopped by its pid, its containerd with it, its bridge and
its directory removed.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import redis
from arq.constants import default_queue_name, health_check_key_suffix
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI
from tests.harness import (
    SANDBOX_IMAGE,
    WEBHOOK_SECRET,
    Service,
    free_port,
    require,
    service_env,
    start_app,
    start_redis,
    start_worker,
    wait_for,
)

HEALTH_CHECK = default_queue_name + health_check_key_suffix
"""arq writes it once a worker's `on_startup` is done."""


@dataclass
class SecondEngine:
    process: subprocess.Popen[bytes]
    root: Path
    host: str
    """`unix://...`: the engine's own socket, for the tests."""
    tcp: str
    """`tcp://127.0.0.1:PORT`: the engine over TLS; only a client certificate its CA signed gets
    in."""
    certs: Path
    """`ca.pem`, `cert.pem` and `key.pem` of a client the engine trusts (`DOCKER_CERT_PATH`)."""

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host)

    def remote_env(self) -> dict[str, str]:
        """What a worker on another host sets to use this engine over TLS."""
        return {"DOCKER_HOST": self.tcp, "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(self.certs)}  # fmt: skip


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    """A certificate for `name`: self-signed CA when `issuer` is None, else a leaf for `usage`."""
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=usage is None, path_length=None), critical=True)
    )  # fmt: skip
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def engine_certs(directory: Path, client_ca: str = "engine CA") -> tuple[Path, Path]:
    """An engine's TLS material in `directory/server` (a CA named `client_ca`, its server
    certificate for 127.0.0.1) and a client's in `directory/client`, in the file names
    `dockerd --tlsverify` and `DOCKER_CERT_PATH` use."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(client_ca, ca_key, None, None)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    folders = []
    for folder, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH),
                          ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):  # fmt: skip
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(f"codex {folder}", key, (ca.subject, ca_key), usage)
        path = directory / folder
        path.mkdir(parents=True)
        (path / "ca.pem").write_bytes(ca_pem)
        (path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (path / "key.pem").write_bytes(_pem(key))
        (path / "key.pem").chmod(0o600)
        folders.append(path)
    return folders[0], folders[1]


def _answers(host: str) -> bool:
    try:
        with contextlib.closing(docker.DockerClient(base_url=host, timeout=2)) as client:
            return bool(client.ping())
    except Exception:
        return False


@contextlib.contextmanager
def second_engine(image: str = SANDBOX_IMAGE) -> Iterator[SecondEngine]:
    """A second `dockerd` on this machine with `image` loaded into it."""
    binary = shutil.which("dockerd")
    if binary is None or os.geteuid() != 0:
        require("dockerd, run as root, for a second Docker engine")
    assert binary is not None
    root = Path(tempfile.mkdtemp(prefix="cd2-", dir="/tmp"))  # short: containerd's socket path
    (root / "daemon.json").write_text("{}")
    host = f"unix://{root}/docker.sock"
    tcp = f"tcp://127.0.0.1:{free_port()}"
    server, client = engine_certs(root / "tls")
    # A bridge of its own, made here: with `--bridge=none` dockerd deletes the host's
    # `docker0`, the main engine's default bridge, out from under it.
    bridge = f"cd2br{os.getpid() % 10000}"
    _make_bridge(bridge)
    argv = [binary, "--data-root", f"{root}/data", "--exec-root", f"{root}/exec",
            "--pidfile", f"{root}/docker.pid", "--host", host, "--host", tcp, "--tlsverify",
            "--tlscacert", f"{server}/ca.pem", "--tlscert", f"{server}/cert.pem",
            "--tlskey", f"{server}/key.pem", "--config-file",
            f"{root}/daemon.json", f"--bridge={bridge}", "--iptables=false",
            "--ip-forward=false", "--ip-masq=false", "--ip6tables=false"]  # fmt: skip
    with (root / "dockerd.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _answers(host) or process.poll() is not None, 60, "the second dockerd")
        assert process.poll() is None, (root / "dockerd.log").read_text()[-3000:]
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", host, "load"], stdin=save.stdout,
                                capture_output=True, check=False)  # fmt: skip
        assert save.wait(120) == 0 and loaded.returncode == 0, loaded.stderr.decode()
        yield SecondEngine(process, root, host, tcp, client)
    finally:
        _stop(process, root)
        subprocess.run(["ip", "link", "delete", bridge], check=False, capture_output=True)


def _make_bridge(name: str) -> None:
    """A bridge with a subnet no other network here uses (TEST-NET-2 is never routed)."""
    subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)
    for command in (["ip", "link", "add", name, "type", "bridge"],
                    ["ip", "addr", "add", "198.51.100.1/24", "dev", name],
                    ["ip", "link", "set", name, "up"]):  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)


def _stop(process: subprocess.Popen[bytes], root: Path) -> None:
    """SIGTERM by pid (dockerd stops its containers and its containerd), SIGKILL if it hangs;
    then whatever containerd is left, by the pid it wrote, and the directory."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    pidfile = root / "exec" / "containerd" / "containerd.pid"
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Fleet:
    """An app and workers sharing one Redis of their own."""

    github: GitHubSim
    openai: ScriptedOpenAI
    env: dict[str, str]
    workdir: Path
    app_url: str = ""
    services: list[Service] = field(default_factory=list)
    workers: list[Service] = field(default_factory=list)

    def start_worker(self, name: str, **overrides: str) -> Service:
        """A worker with `overrides` in its environment, once its startup is done."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            client.delete(HEALTH_CHECK)
            worker = start_worker(self.env | overrides, self.workdir / f"{name}.log")
            self.services.append(worker)
            self.workers.append(worker)
            wait_for(lambda: client.exists(HEALTH_CHECK) or worker.process.poll() is not None,
                     60, f"{name}'s startup")  # fmt: skip
            assert worker.process.poll() is None, worker.tail()
        finally:
            client.close()
        return worker

    def label(self, repo: str, number: int, delivery: str, sender: str = "alice") -> None:
        payload = self.github.webhook_payload(
            "issues", "labeled", repo, sender=sender, number=number, label="codex"
        )
        url = f"{self.app_url}/webhook"
        response = self.github.deliver(url, WEBHOOK_SECRET, "issues", payload, delivery_id=delivery)
        assert response.status_code == 202, response.text

    def logs(self) -> str:
        return "\n".join(f"--- {s.log.name} ---\n{s.tail(40)}" for s in self.services)


@contextlib.contextmanager
def fleet(
    github: GitHubSim, openai_fake: ScriptedOpenAI, workdir: Path, **overrides: str
) -> Iterator[Fleet]:
    """The app on a Redis of its own; start workers with `Fleet.start_worker`. Every process
    is stopped by its pid at the end."""
    redis_server, url = start_redis(workdir)
    env = service_env(url, github, openai_fake, None, **overrides)
    group = Fleet(github, openai_fake, env, workdir)
    try:
        app, group.app_url = start_app(env, workdir / "app.log")
        group.services.append(app)
        yield group
    finally:
        for service in reversed(group.services):
            service.stop()
        redis_server.terminate()
        redis_server.wait(10)
