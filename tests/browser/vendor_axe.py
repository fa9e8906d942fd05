"""axe-core for the accessibility tests, from npm, into .venv/node (test-only, never served).

`make axe` (a prerequisite of `make test`) runs this file; the browser tests' `axe_source`
fixture calls `ensure()` too, so a plain `pytest` on a fresh machine fetches it by itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "4.14.1"
ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".venv" / "node"
SCRIPT = PREFIX / "node_modules" / "axe-core" / "axe.min.js"


def installed_version() -> str | None:
    import json

    package = SCRIPT.parent / "package.json"
    if not package.exists():
        return None
    return json.loads(package.read_text(encoding="utf-8")).get("version")


def ensure() -> Path:
    """The path of axe.min.js, installing axe-core with npm when it is missing."""
    if SCRIPT.exists() and installed_version() == VERSION:
        return SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch axe-core for the accessibility tests "
                           "(apt-get install npm)")
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund",
                    "--no-save", "--silent", f"axe-core@{VERSION}"], check=True)
    if not SCRIPT.exists():
        raise RuntimeError(f"npm did not install {SCRIPT}")
    return SCRIPT


if __name__ == "__main__":
    print(ensure(), file=sys.stderr)
