"""``python -m build`` makes an sdist and a wheel; the sdist installs into a fresh virtualenv
with a C compiler (the extension built and used, no warning) and without one (the pure-Python
appender used, one clear warning, a representative test subset green); the wheel declares only
the runtime dependencies.

Slow (about a minute and a half: one build, two virtualenvs, packages from the index or pip's
cache), so it is marked ``slow`` and ``make test`` leaves it out; ``make test-packaging`` runs
it, and CI (.ci/run) runs that as its own step.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.packaging, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"crc32c", "lz4", "zstandard"}
#: Unit tests that exercise the record paths, send(), the sender and the config, and need no
#: broker, no compiled module and no tool beyond pytest (the pure-path run's subset).
SUBSET = [
    "tests/unit/test_accumulator.py",
    "tests/unit/test_sender.py",
    "tests/unit/test_send_validation.py",
    "tests/unit/test_producer_facade.py",
    "tests/unit/test_outcome.py",
    "tests/unit/test_config.py",
    "tests/unit/test_mock_producer.py",
]
TEST_TOOLS = ["pytest>=8", "pytest-asyncio>=0.24", "pytest-timeout>=2.3", "hypothesis>=6.100"]


def run(*cmd: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    base["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    proc = subprocess.run(
        [str(c) for c in cmd],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "aioproducer"
    # A clean copy of the checkout (no built extension, caches or venv), as a fresh clone is.
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.so", "__pycache__", "*.egg-info", ".*_cache"
        ),
    )
    run(sys.executable, "-m", "build", "--outdir", out, src)
    (sdist,) = out.glob("aioproducer-*.tar.gz")
    (wheel,) = out.glob("aioproducer-*.whl")
    yield sdist, wheel


def venv(path: Path) -> Path:
    run(sys.executable, "-m", "venv", path)
    return path / "bin" / "python"


def probe(python: Path, cwd: Path) -> str:
    """Which appender the installed package runs on, with every warning shown."""
    return run(
        python,
        "-W",
        "always",
        "-c",
        "import aioproducer, aioproducer._records.record_batch as rb; "
        "print(rb.IMPLEMENTATION, aioproducer.__file__)",
        cwd=cwd,
    )


def test_the_wheel_declares_only_runtime_dependencies(dists: tuple[Path, Path]) -> None:
    _, wheel = dists
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        meta = z.read(name).decode()
        assert any(n.endswith(".dist-info/entry_points.txt") for n in z.namelist())
        assert (
            "aioproducer = aioproducer.cli:main"
            in z.read(name.replace("METADATA", "entry_points.txt")).decode()
        )
        assert "aioproducer/py.typed" in z.namelist()
    requires = re.findall(r"^Requires-Dist: (.+)$", meta, re.M)
    unconditional = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in requires
                     if "extra ==" not in r}  # fmt: skip
    assert unconditional == RUNTIME, requires


def test_sdist_with_a_c_compiler_builds_and_uses_the_extension(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    sdist, _ = dists
    python = venv(tmp_path / "venv")
    log = run(python, "-m", "pip", "install", sdist)
    assert "warning" not in log.lower(), log  # installing prints no warning banner
    out = probe(python, tmp_path)
    assert out.startswith("c "), out
    assert "Warning" not in out, out
    assert str(tmp_path / "venv") in out  # the installed package, not the checkout
    assert "usage: aioproducer" in run(tmp_path / "venv" / "bin" / "aioproducer", "--help")


def test_sdist_without_a_c_compiler_runs_on_pure_python(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    sdist, _ = dists
    python = venv(tmp_path / "venv")
    # No compiler: the extension is optional, so the install succeeds without it.
    nocc = {"CC": "/nonexistent/cc", "CXX": "/nonexistent/c++", "LDSHARED": "/nonexistent/cc"}
    run(python, "-m", "pip", "install", "--no-binary", "aioproducer", sdist, *TEST_TOOLS, env=nocc)
    out = probe(python, tmp_path)
    assert out.startswith("python "), out
    warnings = [line for line in out.splitlines() if "RuntimeWarning" in line]
    assert len(warnings) == 1 and "pure-Python" in out, out
    # The subset, from a copy of the tests (so the checkout's package cannot shadow the
    # installed one), the warning allowed (the suite turns warnings into errors).
    work = tmp_path / "work"
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", work)
    res = run(
        python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-W", "ignore:aioproducer:RuntimeWarning", *SUBSET,
        cwd=work,
    )  # fmt: skip
    assert re.search(r"\d+ passed", res) and "failed" not in res and "error" not in res, res
