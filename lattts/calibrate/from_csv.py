"""`lattts calibrate --from-csv`: fit a profile to someone else's timings, only the parameters they identify.

Files are lattts' own format (``measurements.py``: whole passes, or single op groups with a ``group``
column, of one or more shapes) or Vidur's per-op and all-reduce profiles (``vidur.py``), several at once.
Per-op rows fit their group's parameters (``opfit``); whole passes fit the remaining whole-pass
parameters (``fit``). Every fitted parameter gets a bootstrap interval and a standing; a fit with any
parameter unidentified, at a search bound or above the device's datasheet is refused (a UserError: one
line naming the parameters and what would pin them), never printed as if it meant something.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lattts import __version__
from lattts.calibrate import opfit, vidur
from lattts.calibrate.fit import (ShapeData, cross_model_errors, fit_profile, free_parameters, heldout_errors,
                                  pass_estimates, relative_errors, summary)
from lattts.calibrate.identify import Estimate
from lattts.calibrate.measurements import read
from lattts.calibrate.oprows import REGIMES, OpRows, concat, from_pass_groups, predict, regime
from lattts.errors import UserError
from lattts.hardware.devices import DeviceSpec
from lattts.models.spec import ModelSpec
from lattts.simulator.deployment import Deployment
from lattts.simulator.profile import DeviceProfile

HBM_SLACK = 1.1  # no streaming rate above 1.1x the datasheet HBM bandwidth (L2 hits lift small kernels a little)
PEAK_SLACK = 1.05  # no tensor-core rate above the datasheet peak (+5% for boost-clock rounding)


@dataclass(frozen=True)
class CsvFitRequest:
    """Timings files to fit, the shapes their lattts-format rows ran (``shape`` column names them), the
    device they were measured on (its datasheet fills what the rows do not fit, and bounds what they do),
    the dtype, and how many bootstrap refits give each parameter's interval."""

    files: tuple[Path, ...]
    base: DeviceProfile  # what the rows do not fit comes from here
    shapes: tuple[ModelSpec, ...] = ()
    device: DeviceSpec | None = None
    dtype: str | None = None
    resamples: int = 100
    keep_unidentified: bool = False  # write a fit with unpinned parameters anyway, each flagged


@dataclass
class CsvFit:
    profile: DeviceProfile
    estimates: list[Estimate]
    errors: dict
    data: list[ShapeData] = field(default_factory=list)  # whole-pass rows (for the figures)
    groups: dict[str, OpRows] = field(default_factory=dict)


def digest(files) -> str:
    """One hash of the timings files' bytes (names the profile they produce)."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()


def _shape(name: str, shapes: tuple[ModelSpec, ...]) -> ModelSpec:
    from lattts.models.registry import resolve_model

    for spec in shapes:
        if spec.name == name:
            return spec
    return resolve_model(name)


def read_rows(request: CsvFitRequest, dtype: str) -> tuple[dict[str, OpRows], list[ShapeData]]:
    """Op-group rows by group, and whole-pass rows by shape, from every file of the request."""
    parts: dict[str, list[OpRows]] = defaultdict(list)
    passes: dict[str, list] = defaultdict(list)
    grouped: dict[tuple, list] = defaultdict(list)  # lattts group rows by (shape, group, devices)
    for path in request.files:
        if vidur.is_vidur(_header(path)):
            for rows in vidur.read(path):
                parts[rows.group].append(rows)
            continue
        default = request.shapes[0].name if len(request.shapes) == 1 else None
        for m in read(path, default_shape=default):
            if m.status != "ok":
                continue
            if m.shape == "model" and default is None:
                raise UserError(f"{path}: rows name no shape; add a `shape` column or give exactly one --model")
            if m.group == "pass":
                passes[m.shape].append(m)
            else:
                grouped[(m.shape, m.group, m.devices)].append(m)
    for rows in grouped.values():
        parts[rows[0].group].append(_group_rows(rows, request, dtype))
    data = []
    for name, rows in passes.items():
        if any(m.devices != 1 for m in rows):
            raise UserError(f"shape {name}: whole-pass rows on several devices are not fitted; give per-group rows")
        data.append(ShapeData(_shape(name, request.shapes), tuple(rows), dtype))
    return {g: concat(v) for g, v in parts.items()}, data


def _group_rows(rows: list, request: CsvFitRequest, dtype: str) -> OpRows:
    m0 = rows[0]
    deploy = Deployment.on(request.base, dtype, m0.devices)
    return from_pass_groups(_shape(m0.shape, request.shapes), deploy, m0.group, [m.batch for m in rows],
                            [m.query_len for m in rows], [m.context_len for m in rows], [m.latency_s for m in rows])


def limits_of(device: DeviceSpec | None, dtype: str) -> dict:
    """Physical ceilings from the datasheet: (value, what it is) per parameter."""
    if device is None or device.mem_bw_bytes_per_s is None:
        return {}
    hbm = (device.mem_bw_bytes_per_s * HBM_SLACK, f"{HBM_SLACK}x the {device.name} datasheet bandwidth")
    out = {k: hbm for k in ("weight_bw_bytes_per_s", "gemv_bw_bytes_per_s", "act_bw_bytes_per_s",
                            "kv_bw_bytes_per_s", "elementwise_bw_bytes_per_s", "row_bw_bytes_per_s")}
    peak = device.flops_for(dtype)
    if peak:
        out["matmul_flops_per_s"] = out["attn_flops_per_s"] = (peak * PEAK_SLACK, f"the {device.name} {dtype} peak")
    if device.interconnect_bytes_per_s:
        out["interconnect_bytes_per_s"] = (device.interconnect_bytes_per_s, f"the {device.name} interconnect")
    return out


def group_errors(measured: np.ndarray, pred: np.ndarray, data: OpRows) -> dict:
    """|pred/meas - 1| overall, by token band and by device count; the median bias too."""
    ratio = pred / measured
    def stats(mask):
        return {**summary(np.abs(ratio[mask] - 1.0)), "bias": float(np.median(ratio[mask] - 1.0))}
    out = {"all": stats(np.ones(len(ratio), bool))}
    if data.group != "comm":
        bands = regime(data.rows)
        out["by_regime"] = {r: stats(bands == r) for _, r in REGIMES if (bands == r).any()}
    out["by_devices"] = {int(n): stats(data.devices == n) for n in np.unique(data.devices)}
    return out


def _header(path: Path) -> list[str]:
    import csv

    if not path.is_file():
        raise UserError(f"timings file {path} does not exist")
    with path.open(encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _dtype(request: CsvFitRequest) -> str:
    """fp16 for Vidur's files (what they were timed in), else --dtype or the base profile's."""
    if any(vidur.is_vidur(_header(p)) for p in request.files):
        if request.dtype not in (None, "fp16"):
            raise UserError(f"--dtype {request.dtype}: Vidur's profiles are timed in fp16; leave --dtype out")
        return "fp16"
    return request.dtype or request.base.dtype


def fitted_names(estimates: list[Estimate]) -> set[str]:
    """Profile fields the estimates set, tied ones included."""
    names = {e.name.split(" ")[0] for e in estimates}
    for name, tied in opfit.TIED.items():
        if name in names:
            names |= set(tied)
    return names


def fit_files(request: CsvFitRequest) -> CsvFit:
    """Fit, estimate, check; raise a UserError for a fit that does not pin its parameters."""
    dtype = _dtype(request)
    groups, data = read_rows(request, dtype)
    if not groups and not data:
        raise UserError("the timings files hold no timed row")
    if groups and not data and request.device is None:
        raise UserError("per-op rows fit only their op groups' parameters; name the device they were measured on "
                        "(--device KEY, `lattts hardware` lists them) so the rest come from its datasheet")
    limits = limits_of(request.device, dtype)
    profile, estimates, errors = replace(request.base, dtype=dtype), [], {}
    for name in opfit.PARAMETERS:
        if name in groups:
            rows = groups[name]
            profile, blocks = opfit.fit_group(rows, profile)
            estimates += [e for b in blocks for e in opfit.estimates(b, profile, request.resamples, limits)]
            held, how = opfit.heldout(rows, profile)
            errors[name] = {"in_sample": group_errors(rows.time_s, predict(profile, rows), rows),
                            "heldout": group_errors(rows.time_s, held, rows), "heldout_by": how}
    if data:
        profile, pass_est, errors["pass"] = _fit_passes(data, profile, fitted_names(estimates), request.resamples,
                                                        limits)
        estimates += pass_est
    if not request.keep_unidentified:
        _refuse_unpinned(estimates, data)
    return CsvFit(profile, estimates, errors, data, groups)


def _fit_passes(data, profile, fixed, resamples, limits):
    params = free_parameters(fixed)
    if sum(len(d.rows) for d in data) < len(params):
        raise UserError(f"{sum(len(d.rows) for d in data)} whole-pass rows; a fit of {len(params)} parameters needs "
                        f"more (aim for 20+ points per shape over batch, query length and context)")
    fitted = fit_profile(data, profile, params=params)
    est = pass_estimates(data, profile, params, resamples, limits)
    errors = {"in_sample": summary(relative_errors(fitted, data)),
              "heldout": summary(heldout_errors(data, profile, params=params, warm=fitted))}
    cross = cross_model_errors(data, profile, params=params, warm=fitted)
    if cross:
        errors["cross_model"] = summary(np.concatenate(list(cross.values())))
    return fitted, est, errors


def _refuse_unpinned(estimates: list[Estimate], data: list[ShapeData]) -> None:
    bad = [e for e in estimates if not e.ok]
    if not bad:
        return
    def show(e):
        span = f", 95% {e.low:.3g}-{e.high:.3g} {e.unit}" if e.low is not None else ""
        return f"{e.name} ({e.status}{span})"
    if len(data) == 1 and any(e.name in {p[0] for p in free_parameters()} for e in bad):
        fix = (f"all whole-pass rows come from one shape ({data[0].spec.name}), whose per-pass, per-layer and "
               f"weight-streaming costs are one constant in every row; time 3+ shapes that differ in width and "
               f"layers (a `shape` column), or give per-op rows (a `group` column or Vidur's files)")
    elif any(e.status.startswith("above") for e in bad):
        fix = "check the units (seconds per row), the --device and --dtype the rows were timed on"
    else:
        fix = ("add rows that vary what these parameters price (more shapes, a 1-2 layer one to tell per-pass from "
               "per-layer costs; more token counts or device counts)")
    raise UserError(f"--from-csv: the rows do not pin {'; '.join(show(e) for e in bad)}: {fix}; or pass "
                    f"--keep-unidentified to write the profile with these flagged")


def provenance(fit: CsvFit, request: CsvFitRequest, command: str) -> dict:
    """What produced a --from-csv profile: files and their hashes, parameters with intervals, errors."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    return {"created": now, "lattts": __version__, "command": command, "dtype": fit.profile.dtype,
            "files": [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in request.files],
            "device_datasheet": request.device.source if request.device else None,
            "parameters": {e.name: e.to_json() for e in fit.estimates}, "errors": fit.errors,
            "unpinned": [e.name for e in fit.estimates if not e.ok],
            "not_fitted": sorted(k for k, v in vars(fit.profile).items()
                                 if isinstance(v, float) and k not in ("memory_bytes", "usable_memory_fraction")
                                 and k not in fitted_names(fit.estimates))}


def save(fit: CsvFit, request: CsvFitRequest, out: Path | None, command: str) -> DeviceProfile:
    """Write the fitted profile (to ``out`` or the profile store under a key from the files' hash)."""
    from lattts.hardware.store import profile_path
    from lattts.paths import write_json_atomic

    key = "csv-" + digest(request.files)[:10]
    names = ", ".join(p.name for p in request.files) if len(request.files) <= 2 else f"{len(request.files)} files"
    device = request.device.name if request.device else request.base.name
    unpinned = sum(not e.ok for e in fit.estimates)
    flag = f"; {unpinned} parameter(s) NOT pinned by the rows (kept with --keep-unidentified)" if unpinned else ""
    profile = replace(fit.profile, name=f"{device} (timings from {names})", kind="calibrated", device_key=key,
                      source=f"fitted by lattts calibrate --from-csv ({names}) on {dt.date.today().isoformat()}{flag}",
                      provenance=provenance(fit, request, command))
    path = out or profile_path(key, profile.dtype, "csv")
    write_json_atomic(path, profile.to_json())
    return replace(profile, provenance={**profile.provenance, "file": str(path)})


def request_for(files: list[Path], models: list[str], device: str | None, dtype: str | None,
                resamples: int, keep_unidentified: bool = False) -> CsvFitRequest:
    """The request the command line describes: --device names the table row the timings were taken on."""
    from lattts.calibrate import run
    from lattts.calibrate.shapes import CPU_DTYPE
    from lattts.dtypes import canonical_dtype
    from lattts.hardware.devices import find_device
    from lattts.hardware.profiles import datasheet_profile
    from lattts.models.registry import resolve_model

    if resamples < 0:
        raise UserError(f"--bootstrap {resamples}: give 0 (no intervals) or more refits, e.g. 100")
    dtype = canonical_dtype(dtype) if dtype else None
    shapes = tuple(resolve_model(m) for m in models)
    row = find_device(device) if device else None
    if row is not None and row.kind == "gpu":
        base = datasheet_profile(row, dtype or "fp16")
    else:
        row = None
        base = run.placeholder_profile(run.fingerprint_cpu(), dtype or CPU_DTYPE)
    return CsvFitRequest(tuple(Path(f) for f in files), base, shapes, row, dtype, resamples, keep_unidentified)
