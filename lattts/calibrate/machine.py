"""The machine's own speed limits, measured in a second: streaming read and copy bandwidth and a
large matmul. They bound the fit (an effective bandwidth above what the memory can stream is
not physical) and sit beside the fitted parameters in every report."""

from __future__ import annotations

BANDWIDTH_SLACK = 1.0  # no fitted bandwidth above the best stream this machine showed (that would not be physical)
FLOPS_SLACK = 2.0  # the additive CPU model's marginal FLOP rate may exceed a standalone big GEMM's


def measure_machine(device: str = "cpu", dtype: str = "fp32", repeats: int = 5) -> dict:
    """Read bandwidth (dot product of two 256 MB vectors), copy bandwidth (bytes moved once) and a
    2048^3 matmul rate, each the best of ``repeats`` (as STREAM reports: a limit, and this VM has slow
    spells); on CUDA the device is synchronised around each."""
    import torch

    from lattts.dtypes import torch_dtype
    from lattts.engine.timing import clock_for, median_seconds

    clock = clock_for(device)

    def timed(fn) -> float:
        return median_seconds(fn, repeats, clock, pick=min)  # limits: the best the machine showed

    n = 64 * 1024 * 1024
    x, y = torch.ones(n, device=device), torch.ones(n, device=device)
    read = 2 * n * 4 / timed(lambda: torch.dot(x, y))
    copy = n * 4 / timed(lambda: y.copy_(x))
    x = y = None  # free 512 MB before the matmul
    m = torch.randn(2048, 2048, device=device, dtype=torch_dtype(dtype))
    matmul = 2 * 2048 ** 3 / timed(lambda: m @ m)
    return {"read_bytes_per_s": read, "copy_bytes_per_s": copy, "matmul_flops_per_s": matmul,
            "note": "stream read = dot product of two 256 MB fp32 vectors; copy counts bytes moved once; "
                    f"matmul = 2048^3 in {dtype}"}


def fit_limits(machine: dict | None) -> dict[str, float]:
    """Upper bounds for the fit's parameters from the measured machine (none when unmeasured)."""
    if not machine:
        return {}
    bw = machine["read_bytes_per_s"] * BANDWIDTH_SLACK
    flops = machine["matmul_flops_per_s"] * FLOPS_SLACK
    return {"weight_bw_bytes_per_s": bw, "gemv_bw_bytes_per_s": bw, "act_bw_bytes_per_s": bw, "kv_bw_bytes_per_s": bw,
            "matmul_flops_per_s": flops, "attn_flops_per_s": flops}
