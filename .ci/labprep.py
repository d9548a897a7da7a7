"""What ``.ci/lab`` decides before it starts JupyterLab (standard library only).

    python .ci/labprep.py installed REQUIREMENT...  exit 0 when every requirement (and
                                                   kimi-jupyter itself, editable from this
                                                   checkout, with its dependencies) is met
    python .ci/labprep.py sync SRC DEST             refresh the working copy DEST of SRC
    python .ci/labprep.py source-hash               hash of what the lab extension is built from

The working copy is what JupyterLab serves, so running the examples (Run All, autosave, a
``%%kimi -f code`` that inserts a cell) never edits the tracked notebooks. ``sync`` copies the
notebooks and their data the first time, and afterwards replaces a copy only when its original
changed (a ``git pull``); a copy the user edited is kept next to it under a dated name first.
``DEST/.kimi-originals.json`` records the hash of each original at the time it was copied.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

MANIFEST = ".kimi-originals.json"
# What the examples need next to them; the test harness (conftest.py, harness/) stays behind.
COPIED = ("*.ipynb", "data/*", "images/*")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync(src: Path, dest: Path, now: float | None = None) -> list[str]:
    """Bring ``dest`` up to date with ``src``; returns one line per file that changed."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / MANIFEST
    try:
        recorded = json.loads(manifest_path.read_text())
        if not isinstance(recorded, dict):
            recorded = {}
    except (OSError, ValueError):
        recorded = {}
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    changes: list[str] = []
    for pattern in COPIED:
        for original in sorted(src.glob(pattern)):
            if not original.is_file() or original.name.startswith("."):
                continue
            rel = original.relative_to(src).as_posix()
            digest = _digest(original)
            copy = dest / rel
            if copy.is_file():
                if recorded.get(rel) == digest:
                    continue  # the original did not change: the copy (maybe edited) stays
                mine = _digest(copy)
                if mine == digest:
                    recorded[rel] = digest
                    continue
                if rel in recorded and mine != recorded[rel]:
                    kept = copy.with_name(f"{copy.stem}.edited-{stamp}{copy.suffix}")
                    copy.rename(kept)
                    changes.append(f"{rel}: updated; your edited copy is kept as {kept.relative_to(dest)}")
                else:
                    changes.append(f"{rel}: updated")
            else:
                changes.append(f"{rel}: copied")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, copy)
            recorded[rel] = digest
    manifest_path.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return changes


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip()


def _satisfied(requirement: str) -> bool:
    from importlib import metadata

    try:
        installed = metadata.version(_name(requirement))
    except metadata.PackageNotFoundError:
        return False
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:
        return False  # cannot tell: install
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate():
        return True
    return req.specifier.contains(Version(installed), prereleases=True)


def installed(requirements: list[str], repo: Path) -> bool:
    """True when kimi-jupyter is installed editable from ``repo`` and every requirement is met."""
    import importlib.util
    from importlib import metadata

    spec = importlib.util.find_spec("kimi_jupyter")
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    if origin is None or origin.parent.parent != repo.resolve():
        return False
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return False
    wanted = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    try:
        own = {r.replace(" ", "") for r in metadata.requires("kimi-jupyter") or [] if "extra ==" not in r}
    except metadata.PackageNotFoundError:
        return False
    if own != {r.replace(" ", "") for r in wanted}:
        return False  # pyproject.toml changed since the install: reinstall
    return all(_satisfied(r) for r in [*wanted, *requirements])


def source_hash(repo: Path) -> str:
    """One hash over the extension's sources: ``.ci/build-labextension`` rebuilds when it changes."""
    root = repo / "labextension"
    files = [root / name for name in ("package.json", "package-lock.json", "tsconfig.json", "install.json",
                                           "overrides.json")]
    for folder in ("src", "style"):
        files += [p for p in (root / folder).rglob("*") if p.is_file()]
    digest = hashlib.sha256()
    for path in sorted(f for f in files if f.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    repo = Path(__file__).resolve().parents[1]
    if argv == ["source-hash"]:
        print(source_hash(repo))
        return 0
    if len(argv) >= 1 and argv[0] == "installed":
        return 0 if installed(argv[1:], repo) else 1
    if len(argv) == 3 and argv[0] == "sync":
        for line in sync(Path(argv[1]), Path(argv[2])):
            print(f"   {line}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
