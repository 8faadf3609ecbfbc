"""Where calibrated profiles are saved: ``<data dir>/profiles/<device key>/<engine>-<dtype>.json``."""

from __future__ import annotations

import re
from pathlib import Path

from lattts.paths import data_dir


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def gpu_device_key(nvml_name: str) -> str:
    """Saved calibrations of a GPU are keyed by its model name: any card of that model can use them."""
    return "gpu-" + slug(nvml_name)


def profile_path(device_key: str, dtype: str, engine: str = "lattts") -> Path:
    return data_dir() / "profiles" / device_key / f"{engine}-{dtype}.json"


def saved_profiles(device_key: str, engine: str = "lattts") -> list[Path]:
    """Saved profiles of a device for an engine, newest first."""
    folder = data_dir() / "profiles" / device_key
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{engine}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
