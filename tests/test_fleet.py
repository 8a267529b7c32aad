"""Many workers, many engines: two workers on two Docker engines share one Redis.

Each worker has its own engine (`DOCKER_HOST`), as each worker host would: the main engine on
its local socket, and a second `dockerd` started here (`tests/fleet.py`: its own data root,
socket and bridge, no firewall rules, so its sandboxes run with network off, the default;
`docker0` stays the main engine's) that its worker reaches the way a remote engine is reached,
over TCP with TLS and a client certificate (`DOCKER_HOST=tcp://...`, `DOCKER_TLS_VERIFY`,
`DOCKER_CERT_PATH`). That engine lets in no client without a certificate its CA signed. Six tasks
are labelled at once; each is done exactly once, by one worker, with one PR, and every
container of a task was created on the engine of the worker that ran it, as each engine's own
event log shows.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import certifi
import docker
import pytest
import requests

from tests.fakes.github import GitHubSim
from tests.fakes.openai import ScriptedOpenAI, finish, shell
from tests.fleet import engine_certs, fleet, second_engine
from tests.harness import Service, wait_for
from worker.reaper import FLEET_LABEL, WORKER_LABEL, fleet_of

pytestmark = pytest.mark.system
TASK_LABEL = "codex.task"


def created(client: docker.DockerClient, fleet: str, since: float) -> list[dict[str, str]]:
    """The labels of every task container of `fleet` this engine created since `since`."""
    labels = [TASK_LABEL, f"{FLEET_LABEL}={fleet}"]
    events = client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                           filters={"type": "container", "event": "create",
                                    "label": labels})  # fmt: skip
    return [dict(event["Actor"]["Attributes"]) for event in events]


def worker_prefix(worker: Service) -> str:
    """The start of the id the worker labels its containers with (`heartbeat.new_worker_id`)."""
    return f"{socket.gethostname()}-{worker.process.pid}-"


def starts(log: Path) -> Counter[str]:
    """How many times the worker started each task, by delivery id."""
    return Counter(re.findall(r"task \S+: started \(delivery (\S+),", log.read_text()))


@pytest.mark.timeout(900)
def test_two_workers_on_two_engines_do_six_tasks_once_each_on_their_own_engine(
    github: GitHubSim, openai_fake: ScriptedOpenAI, docker_ready: None, tmp_path: Path
) -> None:
    sim, owner = github, "octo-fleet"
    repos = [f"{owner}/engines-{n}" for n in range(3)]
    for repo in repos:
        sim.create_repo(repo, {"README.md": "# fleet\n"})
        sim.set_permission(repo, "alice", "write")
    issues: list[tuple[str, int, str]] = []
    for n in range(6):
        repo, title = repos[n % 3], f"Fleet: two engines, task {n}"
        openai_fake.script(
            title, [[shell(f"sleep 3 && echo 'task {n}' >> NOTES.md")], [finish(f"Noted {n}.")]]
        )
        issues.append((repo, sim.create_issue(repo, title, "Add a note.", user="alice"), title))

    since = time.time() - 1
    with second_engine() as engine, fleet(sim, openai_fake, tmp_path) as group:
        main = group.start_worker("worker-main", EGRESS_PORT="3132")
        # A host behind a TLS-inspecting proxy sets these for every client that uses requests,
        # docker-py included; the engine's own CA (DOCKER_CERT_PATH) must still be the one used.
        bundle = {name: certifi.where() for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
        other = group.start_worker("worker-second", **engine.remote_env(), **bundle)
        stranger = engine_certs(tmp_path / "stranger", client_ca="another CA")[1]
        ca = str(engine.certs / "ca.pem")
        certificate = (str(stranger / "cert.pem"), str(stranger / "key.pem"))
        for how, url, tls in (
            ("plain HTTP", engine.tcp.replace("tcp:", "http:"), False),
            ("TLS without a client certificate", engine.tcp,
             docker.tls.TLSConfig(ca_cert=ca, verify=True)),
            ("a client certificate another CA signed", engine.tcp,
             docker.tls.TLSConfig(client_cert=certificate, ca_cert=ca, verify=True)),
        ):  # fmt: skip
            client = docker.APIClient(base_url=url, tls=tls, version="1.41", timeout=10)
            client.trust_env = False  # this process's REQUESTS_CA_BUNDLE would fail it first
            with (
                contextlib.closing(client),
                pytest.raises((docker.errors.APIError, requests.exceptions.ConnectionError)) as no,
            ):
                client.containers()
            print(f"the TLS engine refuses {how}: {str(no.value)[-160:]}")
            # TLS 1.3 may tell a refused client certificate as a reset rather than an alert.
            said = str(no.value)
            assert any(w in said for w in ("HTTPS server", "alert", "reset", "aborted")), how
        for n, (repo, number, _) in enumerate(issues):
            group.label(repo, number, f"fleet-engines-{n}")

        def all_done() -> bool:
            return all(
                any("Draft PR ready" in c["body"] for c in sim.comments(repo, number))
                for repo, number, _ in issues
            )

        wait_for(all_done, 420, f"six draft PRs\n{group.logs()}")
        ours = fleet_of(group.env["REDIS_URL"])
        with contextlib.closing(docker.from_env()) as first:
            on_main = created(first, ours, since)
        with contextlib.closing(engine.client()) as second:
            on_second = created(second, ours, since)
        main_starts, other_starts = starts(main.log), starts(other.log)

    pulls = [pull for repo in repos for pull in sim.pulls(repo)]
    print(f"PRs: {len(pulls)}; tasks run by the main engine's worker: {sum(main_starts.values())}"
          f", by the second engine's: {sum(other_starts.values())}; containers created: "
          f"{len(on_main)} on the main engine, {len(on_second)} on the second")  # fmt: skip
    assert len(pulls) == 6, "one PR per task"
    assert len({(repo, p["head"]) for repo in repos for p in sim.pulls(repo)}) == 6
    for repo, number, title in issues:
        assert sum(title in p["title"] for p in pulls) == 1, title
        assert len(sim.comments(repo, number)) == 1, "one status comment per task"

    deliveries = {f"fleet-engines-{n}" for n in range(6)}
    both = main_starts + other_starts
    assert set(both) == deliveries and set(both.values()) == {1}, f"each task once: {both}"
    assert main_starts and other_starts, "both workers ran tasks"

    # Every container of a task is on the engine of the worker that ran it, and only there.
    for containers, worker, ran in ((on_main, main, main_starts), (on_second, other, other_starts)):
        prefix = worker_prefix(worker)
        assert containers, f"{worker.log.name}: no container on its engine"
        assert all(labels[WORKER_LABEL].startswith(prefix) for labels in containers), containers
        tasks_here = {labels[TASK_LABEL] for labels in containers}
        assert len(tasks_here) == len(ran), (tasks_here, ran)
    main_tasks = {labels[TASK_LABEL] for labels in on_main}
    assert not main_tasks & {labels[TASK_LABEL] for labels in on_second}
    assert engine.process.poll() is not None, "the second dockerd was stopped"
    assert subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0, (
        "the main engine's default bridge is still there"
    )
    assert not engine.root.exists(), "its data root was removed"
