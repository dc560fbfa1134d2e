#!/usr/bin/env python3
"""Set up and run smsrelay with nothing but Python: `run`, `test`, `check`, `lock`.

python3 scripts/dev.py run     # virtualenv from the lock file, then `smsrelay serve`
python3 scripts/dev.py test    # format check, lint, mypy --strict, the whole test suite
python3 scripts/dev.py pytest [ARGS]   # the test suite only
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".smsrelay-installed"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv and install the locked dependencies, unless already current."""
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    if not (BIN / "python").exists():
        print("creating virtualenv in .venv …", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print("installing locked dependencies …", file=sys.stderr)
    subprocess.run([*pip, "-r", str(LOCK)], check=True, cwd=ROOT)
    subprocess.run([*pip, "--no-deps", "-e", "."], check=True, cwd=ROOT)
    STAMP.write_text(_fingerprint())


def run(*command: str) -> int:
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT).returncode


def check() -> int:
    steps = [
        ("ruff", "format", "--check", "src", "tests", "bench", "scripts"),
        ("ruff", "check", "src", "tests", "bench", "scripts"),
        ("mypy", "src"),
    ]
    for step in steps:
        print("$", " ".join(step), file=sys.stderr, flush=True)
        code = run(*step)
        if code:
            return code
    return 0


def main(argv: list[str]) -> int:
    task = argv[0] if argv else "help"
    if task not in {"run", "test", "check", "pytest"}:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    if task == "run":
        return run("smsrelay", "serve", *argv[1:])
    if task == "pytest":
        return run("pytest", *argv[1:])
    code = check()
    if task == "check" or code:
        return code
    return run("pytest", *argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
