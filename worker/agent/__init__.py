"""The coding agent: the loop (`loop.py`), its tools (`tools.py`), the patch format
(`patch.py`, `hunks.py`) and the prompt (`prompt.py`). It depends on `worker.protocols` only
for the model and the sandbox it drives."""
