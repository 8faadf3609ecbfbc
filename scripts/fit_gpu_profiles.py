"""Refit the measured H100 SXM and A100 SXM 80GB profiles lattts ships from Vidur's kernel timings.

    python scripts/fit_gpu_profiles.py            # writes lattts/data/profiles/<key>.json (200 bootstrap refits)
    python scripts/fit_gpu_profiles.py --check    # refits without intervals, compares with the shipped files

The fit is `lattts calibrate --from-csv` on lattts/data/vidur/ (lattts.calibrate.shipped); the same check
runs in tests/test_gpu_profiles.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lattts.calibrate.shipped import GPU_FILES, refit  # noqa: E402
from lattts.hardware.profiles import measured_profile  # noqa: E402
from lattts.paths import write_json_atomic  # noqa: E402

RESAMPLES = 200


def main() -> int:
    check = "--check" in sys.argv
    worst = 0.0
    for key in GPU_FILES:
        profile = refit(key, 0 if check else RESAMPLES)
        if check:
            shipped = measured_profile(key)
            for name, entry in shipped.provenance["parameters"].items():
                field = name.split(" ")[0]
                got = getattr(profile, field) if " " not in name else next(
                    getattr(c, "latency_s" if field == "allreduce_latency_s" else "bus_bytes_per_s")
                    for c in profile.allreduce_by_devices if f"(n={c.devices})" in name)
                worst = max(worst, abs(got / entry["value"] - 1.0))
                print(f"{key} {name:36s} shipped {entry['value']:.5g} refit {got:.5g}")
            continue
        path = ROOT / "lattts" / "data" / "profiles" / f"{key}.json"
        write_json_atomic(path, profile.to_json())
        print(f"wrote {path.relative_to(ROOT)}: {json.dumps({k: v['value'] for k, v in profile.provenance['parameters'].items()})}")
    if check:
        print(f"largest relative difference {worst:.2e}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
