"""The receiver stays small, the test suite's `system` marker means what it says, and test
modules share helpers through named modules (tests/harness.py, tests/repos.py), never each other."""

from __future__ import annotations

import ast
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


def imported_modules(path: Path) -> set[str]:
    """The modules `path` imports, as absolute names (`from x import y` also counts `x.y`)."""
    package = list(path.relative_to(ROOT).parent.parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return names


def test_no_test_module_imports_another() -> None:
    """A test module is collected, not imported: helpers two test files share live in a module
    named for what it holds, so running one file never collects another's tests."""
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(ROOT.glob("tests/**/*.py"))
        for name in imported_modules(path)
        if name.startswith("tests.test_")
    }
    assert offenders == set()
    seen = imported_modules(ROOT / "tests" / "test_triggers.py")
    assert "tests.harness.System" in seen, "the check sees what a test module imports"


def test_benchmarks_import_the_harness_never_the_conftest() -> None:
    """`bench/` starts the system the way the tests do, through tests/harness.py; the conftest
    is pytest's (fixtures and hooks), and nothing imports it."""
    everything = sorted([*ROOT.glob("bench/**/*.py"), *ROOT.glob("tests/**/*.py")])
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in everything
        for name in imported_modules(path)
        if name == "tests.conftest" or name.startswith("tests.conftest.") or name == "conftest"
    }
    assert offenders == set()
    assert any("tests.harness" in imported_modules(path) for path in ROOT.glob("bench/*.py"))
