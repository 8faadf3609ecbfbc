"""Which torch device the engine runs on, checked before any model is loaded."""

from __future__ import annotations

from lattts.errors import UserError


def check_device(device: str) -> None:
    """UserError unless ``device`` is 'cpu' or an available 'cuda:N'."""
    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise UserError(f"--device {device!r}: use cpu or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available here (torch {torch.__version__}); use --device cpu")
