"""Calibrating a serving engine: the served model's decode steps and prefills timed through the
server (``lattts.serving.timing``), fitted to the same ``DeviceProfile`` as the engine's passes,
with the server's name, version, launch settings and model in the profile's provenance.

One served model is one shape, so the fitted rates describe this model on this server (weights in
the file's quantized bytes, KV cache in fp16, llama.cpp's default), not the device in general: the
held-out error says how well they predict it. A server's matmul kernels may change with the token
rows of a pass, so its fit also tries the measured correction by rows (``fit.fit_rows_factor``) and
keeps it where it predicts held-out points better. The sweep is the engine's: resumable, every point
paired with an anchor request so the machine's drift is divided out.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

from lattts.calibrate.grid import Anchors
from lattts.calibrate.run import Calibration, CalibrationRequest, SweepPlan, Target, calibrate, fingerprint_cpu
from lattts.models.spec import ModelSpec

SERVER_KV_DTYPE = "fp16"  # llama.cpp's default KV cache type (--cache-type-k/v f16)
REPEATS = {True: 2, False: 3}  # requests per point (each is a whole generation)


def server_target(backend) -> Target:
    """The device behind the server: this machine's CPU for a loopback server, else the server itself."""
    host = urlparse(backend.info.url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        cpu = fingerprint_cpu()
        return replace(cpu, fingerprint={**cpu.fingerprint, "server": backend.info.url})
    from lattts.hardware.store import slug

    return Target(device="server", key=f"server-{slug(host)}", name=f"{backend.engine} server at {host}",
                  memory_bytes=0.0, fingerprint={"kind": "server", "url": backend.info.url})


def calibrate_server(backend, spec: ModelSpec, quick: bool, resume: bool = True, out: Path | None = None,
                     progress=(None, None)) -> Calibration:
    """Time ``spec`` as ``backend`` serves it and fit its profile; ``progress`` is (on_point, on_start)."""
    from lattts.serving.timing import ServerPassRunner, server_grid

    runner = ServerPassRunner(backend)
    info = backend.info
    request = CalibrationRequest(target=server_target(backend), shapes=(spec,), dtype=SERVER_KV_DTYPE, quick=quick,
                                 resume=resume, engine=info.engine, out=out)
    slots = info.slots or 1
    sweep = SweepPlan(tuple(server_grid(slots, info.context_tokens or 2048, quick)), REPEATS[quick], warmup=0,
                      rows_factor=True, per_sequence=True, timer=runner.timer, anchors=Anchors.within(slots))
    server = {**info.to_json(), "timer": runner.timer, "weights": spec.weight_format.source if spec.weight_format else None,
              "kv_dtype": SERVER_KV_DTYPE, "one_shape": "the fitted rates describe this model on this server"}
    on_point, on_start = progress
    return calibrate(request, lambda _: runner, on_point, on_start, measure=None, sweep=sweep, server=server,
                     outside=lambda _: runner.outside_costs())
