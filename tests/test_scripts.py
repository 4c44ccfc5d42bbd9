"""The quick start's two commands: ``./optimlab`` and ``./run-tests`` set up on first use only."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fake_clone(tmp_path: Path, *, stamp_ok: bool) -> Path:
    """A copy of the scripts with a fake .venv whose optimlab and python echo their arguments."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("optimlab", "run-tests", "pyproject.toml", "scripts/setup.sh"):
        shutil.copy2(ROOT / name, clone / name)
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for exe in ("optimlab", "python"):
        (bin_dir / exe).write_text(f'#!/usr/bin/env bash\necho "{exe} $*"\n')
        (bin_dir / exe).chmod(0o755)
    digest = hashlib.sha256((clone / "pyproject.toml").read_bytes()
                            + (clone / "scripts/setup.sh").read_bytes()).hexdigest()
    (clone / ".venv" / ".optimlab-setup").write_text((digest if stamp_ok else "old") + "\n")
    return clone


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                    reason="needs bash and sha256sum")
def test_commands_skip_setup_when_the_environment_is_current(tmp_path: Path) -> None:
    clone = _fake_clone(tmp_path, stamp_ok=True)
    env = {**os.environ, "PATH": os.environ["PATH"]}
    out = subprocess.run([str(clone / "optimlab"), "compare", "--seeds", "5"], env=env,
                         capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "optimlab compare --seeds 5"
    assert "setting up" not in out.stderr
    out = subprocess.run([str(clone / "run-tests"), "-k", "x"], env=env, capture_output=True,
                         text=True, timeout=30, check=True)
    assert out.stdout.strip() == "python -m pytest -k x"


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                    reason="needs bash and sha256sum")
def test_a_stale_stamp_triggers_setup(tmp_path: Path) -> None:
    clone = _fake_clone(tmp_path, stamp_ok=False)
    # python3 that fails at once: proves setup was entered without building a real environment
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python3").write_text("#!/usr/bin/env bash\necho 'python3 called' >&2\nexit 3\n")
    (fake_bin / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    out = subprocess.run([str(clone / "optimlab"), "--help"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 3
    assert "setting up optimlab" in out.stderr and "python3 called" in out.stderr
    assert out.stdout == ""  # setup chatter never reaches standard output
