"""The profile a validation predicts with: a given file (for this device), else this device's saved
calibration if it is fresh, else a quick calibration made now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from lattts.errors import UserError
from lattts.hardware.profiles import load_profile
from lattts.hardware.store import profile_path
from lattts.simulator.profile import DeviceProfile

FRESH_HOURS = 12.0  # a saved profile older than this is recalibrated before validating


def age_hours(profile: DeviceProfile) -> float:
    created = dt.datetime.fromisoformat(profile.provenance.get("created", "1970-01-01T00:00:00+00:00"))
    return (dt.datetime.now(dt.timezone.utc) - created).total_seconds() / 3600


def profile_for(path: Path | None, device: str, dtype: str, engine: str,
                on_calibrate: Callable[[str], None] | None = None) -> tuple[DeviceProfile, str, Path]:
    """(profile, why it was chosen, its file) for ``device`` ('cpu' or 'cuda:N') and ``engine``."""
    from lattts.calibrate import run
    from lattts.calibrate.shapes import default_shapes

    target = run.fingerprint_cpu() if device == "cpu" else run.fingerprint_gpu(int(device.split(":")[1]))
    if path is not None:
        prof = load_profile(path)
        if prof.kind != "calibrated" or prof.device_key != target.key:
            flag = "--device cpu" if device == "cpu" else "--gpu " + device.split(":")[1]
            raise UserError(f"profile {path} describes {prof.name} ({prof.device_key}), not this device "
                            f"({target.name}, {target.key}); recalibrate here: lattts calibrate {flag}")
        return prof, f"--profile {path}", Path(path)
    saved = profile_path(target.key, dtype, engine)
    if saved.is_file():
        prof = load_profile(saved)
        if age_hours(prof) < FRESH_HOURS:
            return prof, f"saved calibration {saved} ({age_hours(prof):.1f} h old)", saved
    if on_calibrate:
        on_calibrate(f"calibrating this device first ({engine} engine, quick): no fresh profile at {saved}")
    request = run.CalibrationRequest(target=target, shapes=tuple(default_shapes(target, dtype)), dtype=dtype,
                                     quick=True, engine=engine)
    result = run.calibrate(request, run.runner_factory(engine, device, dtype))
    return result.profile, f"calibrated now (quick): {result.profile_file}", result.profile_file
