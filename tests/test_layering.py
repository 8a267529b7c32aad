"""The receiver stays small, and the test suite's `system` marker means what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_importing_the_receiver_loads_no_docker_openai_or_worker_module() -> None:
    """The webhook receiver must answer within GitHub's 10 s and holds no sandbox or model
    code: what it imports is what an attacker reaching it can exercise."""
    probe = (
        "import sys, app.main\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'docker', 'openai', 'worker'}))"
    )
    done = run(sys.executable, "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def collected(*args: str) -> list[str]:
    done = run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
               *args)  # fmt: skip
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: nothing selected
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_tests_that_start_the_system_are_marked_system() -> None:
    files = ("tests/test_pull_tasks.py", "tests/test_prompt.py")
    system = collected("-m", "system", *files)
    others = collected("-m", "not system", *files)
    assert system and all(name.startswith("tests/test_pull_tasks.py::") for name in system)
    assert others and all(name.startswith("tests/test_prompt.py::") for name in others)


def test_an_unknown_marker_is_an_error_not_a_silent_no_op(tmp_path: Path) -> None:
    typo = tmp_path / "test_typo.py"
    typo.write_text("import pytest\n\n\n@pytest.mark.sytem\ndef test_x() -> None:\n    pass\n")
    done = run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
               "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(typo))  # fmt: skip
    assert done.returncode != 0
    assert "'sytem' not found in `markers` configuration option" in done.stdout + done.stderr


def test_the_report_package_imports_no_sandbox_code() -> None:
    """The work log and the PR body are text made from data: no container code behind them."""
    for path in (ROOT / "worker" / "report").glob("*.py"):
        imports = [line for line in path.read_text().splitlines() if "import" in line]
        assert not [line for line in imports if "sandbox" in line or "docker" in line], path
