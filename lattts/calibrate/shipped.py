"""The measured GPU profiles lattts ships (lattts/data/profiles/), fitted to Vidur's kernel timings
(lattts/data/vidur/) by the same fit as `lattts calibrate --from-csv`, and the leave-one-model-out check
of how well such a profile predicts a model it never saw.

``refit(key)`` is what ``scripts/fit_gpu_profiles.py`` writes and ``tests/test_gpu_profiles.py`` compares
with the shipped file; ``lomo_tables(key)`` is what ``benchmarks/bench_gpu_kernels.py`` prints.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

from lattts.calibrate import opfit, vidur
from lattts.calibrate.from_csv import CsvFitRequest, fit_files, provenance
from lattts.calibrate.oprows import REGIMES, OpRows, concat, predict, regime
from lattts.hardware.devices import find_device
from lattts.hardware.profiles import datasheet_profile
from lattts.simulator.profile import DeviceProfile

VIDUR = "microsoft/vidur@7d47513"
GPU_FILES = {"h100-sxm": "h100", "a100-sxm-80gb": "a100"}  # table row -> Vidur's name for the GPU
TOPOLOGY = "dgx"  # one 8-GPU NVSwitch node: what an SXM part sits in
UNFITTED = ("attention (kv_bw, attn_flops), the LM head's own cost and the per-pass overhead are not in the "
            "data (Vidur times attention separately and kernel durations exclude launch gaps): they stay at the "
            "datasheet x stated defaults")


def files(key: str) -> tuple[Path, ...]:
    """Vidur's per-op profiles of every model on the GPU, then its NVSwitch all-reduce profile."""
    folder = Path(str(resources.files("lattts").joinpath("data", "vidur")))
    gpu = GPU_FILES[key]
    return tuple(sorted(folder.glob(f"vidur_{gpu}_*_mlp.csv"))) + (folder / f"vidur_{gpu}_{TOPOLOGY}_all_reduce.csv",)


def request(key: str, resamples: int = 0) -> CsvFitRequest:
    device = find_device(key)
    return CsvFitRequest(files(key), datasheet_profile(device, "fp16"), device=device, resamples=resamples)


def refit(key: str, resamples: int = 0) -> DeviceProfile:
    """The measured profile of table row ``key``, fitted afresh, with its provenance."""
    req = request(key, resamples)
    fit = fit_files(req)
    models = sorted({vidur.source_name(p) for p in req.files[:-1]})
    prov = provenance(fit, req, f"python scripts/fit_gpu_profiles.py (lattts calibrate --from-csv of {len(req.files)} "
                                f"files, --bootstrap {resamples})")
    prov.update({"data": f"{VIDUR}, copied unchanged to lattts/data/vidur/", "models": models, "unfitted": UNFITTED,
                 "topology": f"{TOPOLOGY} (one NVSwitch node, 2-8 devices)"})
    source = (f"fitted to Vidur kernel timings ({VIDUR}: {len(models)} models, TP 1-8, fp16 matmul and "
              f"element-wise kernels, NVSwitch all-reduce); attention and per-pass overhead: datasheet x defaults")
    return replace(fit.profile, name=req.device.name, kind="measured", device_key=key, source=source, provenance=prov)


def rows(key: str) -> dict[str, OpRows]:
    """The op rows of the shipped files of ``key``, by group."""
    parts: dict[str, list[OpRows]] = {}
    for path in files(key):
        for r in vidur.read(path):
            parts.setdefault(r.group, []).append(r)
    return {g: concat(v) for g, v in parts.items()}


def _stats(pred, meas) -> dict:
    ratio = np.asarray(pred) / np.asarray(meas)
    err = np.abs(ratio - 1.0)
    return {"median": float(np.median(err)), "p90": float(np.quantile(err, 0.9)),
            "bias": float(np.median(ratio - 1.0)), "points": int(len(err))}


def table(pred: np.ndarray, data: OpRows) -> dict:
    """Errors overall, by token band and by tensor-parallel size (or device count, for all-reduce)."""
    out = {"all": _stats(pred, data.time_s)}
    if data.group != "comm":
        bands = regime(data.rows)
        out["by_regime"] = {r: _stats(pred[bands == r], data.time_s[bands == r]) for _, r in REGIMES if (bands == r).any()}
    out["by_tp"] = {int(n): _stats(pred[data.devices == n], data.time_s[data.devices == n])
                    for n in np.unique(data.devices)}
    return out


def layer_sums(pred: np.ndarray, data: OpRows) -> tuple[np.ndarray, OpRows]:
    """The four matmuls of each (model, shard, N) summed: the unit lattts' linear group predicts."""
    key = np.char.add(np.char.add(data.source, "|"), data.devices.astype(str)) + "|" + data.rows.astype(str)
    labels, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    total = lambda x: np.bincount(inverse, weights=x, minlength=len(labels))  # noqa: E731
    summed = data.take(first)
    summed = replace(summed, time_s=total(data.time_s), op=np.full(len(labels), "layer"))
    return total(pred), summed


def lomo_tables(key: str) -> dict:
    """Leave-one-model-out (all-reduce: 5-fold over sizes) errors of the fitted model, and the datasheet
    model's errors on the same rows ("before")."""
    groups, device = rows(key), find_device(key)
    before = datasheet_profile(device, "fp16")
    out = {"device": device.name, "data": VIDUR}
    for name, data in groups.items():
        held, how = opfit.heldout(data, before)
        old = predict(before, data)
        entry = {"heldout_by": how, "after": table(held, data), "before": table(old, data)}
        if name == "linear":
            entry["per_layer"] = {"after": table(*layer_sums(held, data)), "before": table(*layer_sums(old, data))}
        out[name] = entry
    # NVLink pairs: the path changes with the device count (2: one bridge; 4: partly over PCIe), so only the
    # per-count fits hold; not part of the profile, which describes an NVSwitch node
    folder = files(key)[-1].parent
    (pairs,) = vidur.read(folder / f"vidur_{GPU_FILES[key]}_pairwise_nvlink_all_reduce.csv")
    held, how = opfit.heldout(pairs, before)
    out["comm_pairwise_nvlink"] = {"heldout_by": how, "after": table(held, pairs),
                                   "before": table(predict(before, pairs), pairs)}
    return out
