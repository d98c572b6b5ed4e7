import getpass
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "DVC_NO_ANALYTICS": "1",
}

# xdist workers share the machine's cores: each worker, and every process it starts (DVC stages, CLIs), gets its
# share of threads. Two processes of two OpenMP threads each on two cores run about 5x slower than two of one thread
# (measured with an RRDBNet forward: 13.5 s against 2.8 s), as the threads spin-wait on each other.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(max(1, (os.cpu_count() or 1) // _WORKERS)))


# The test that runs longest by far (the whole paper DAG): started first, so that one xdist worker runs it while the
# other works through the rest, and neither waits for it at the end.
LONGEST = "tests/test_paper_rehearsal.py::"


def pytest_sessionstart(session):
    """Earlier sessions' folders go before this one writes: pytest removes them only at a session's end (pytest.ini
    keeps one), and on a machine that ran the suite before, each may hold a rehearsal's 12 GB."""
    if hasattr(session.config, "workerinput") or session.config.option.basetemp:  # xdist workers: the controller's
        return
    temproot = Path(os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir()).resolve()
    for folder in (temproot / f"pytest-of-{getpass.getuser()}").glob("pytest-[0-9]*"):
        if not (folder / ".lock").exists():  # a running session holds its lock
            shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST))  # stable: the rest keep their order


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory) -> Path:
    """The working tree's files (tracked and untracked, not ignored) in a fresh git repo: a clean clone of now."""
    dest = tmp_path_factory.mktemp("clone")
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], ROOT).stdout.split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "snapshot"], dest)
    return dest
