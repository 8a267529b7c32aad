"""`python -m worker`: the arq worker, run as arq's own command line runs it, except that arq's
`Worker` is handed to startup in `ctx` so that the engine watch can hold its intake
(`worker/enginewatch.py`). arq's `create_worker` and `Worker.run` are arq's public API."""

from __future__ import annotations

import logging.config

from arq.logs import default_log_config
from arq.worker import create_worker

from worker.main import ARQ_WORKER, WorkerSettings


def main() -> None:
    logging.config.dictConfig(default_log_config(verbose=False))
    worker = create_worker(WorkerSettings)  # type: ignore[arg-type]
    worker.ctx[ARQ_WORKER] = worker
    worker.run()


if __name__ == "__main__":
    main()
