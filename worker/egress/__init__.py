"""The network boundary of a sandbox: the allowlist policy (`policy.py`), which network each
phase gets (`phases.py`), the egress proxy (`proxy.py` and the modules it is made of), its own
process (`process.py`, driven by `client.py` and `service.py`), its certificate authority
(`certs.py`) and the firewall self-test (`selftest.py`, `probe.py`)."""
