"""Where lattts keeps user data, and atomic writes.

Profiles and caches live under ``$LATTTS_HOME`` if set, else ``$XDG_DATA_HOME/lattts``, else
``~/.local/share/lattts``; downloads under ``$LATTTS_CACHE`` if set, else ``$LATTTS_HOME/cache``, else
``$XDG_CACHE_HOME/lattts`` (``~/.cache/lattts``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def data_dir() -> Path:
    """Per-user data directory (profiles, calibration measurements)."""
    if os.environ.get("LATTTS_HOME"):
        return Path(os.environ["LATTTS_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "lattts"


def cache_dir() -> Path:
    """Per-user cache directory (downloaded model files)."""
    if os.environ.get("LATTTS_CACHE"):
        return Path(os.environ["LATTTS_CACHE"])
    if os.environ.get("LATTTS_HOME"):
        return Path(os.environ["LATTTS_HOME"]) / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "lattts"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, text: str, make_parents: bool = True) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers never see half a file.
    Missing folders on the way are made, unless ``make_parents`` is False (a path the user gave)."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # as open() would make it; mkstemp makes 0600
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
