"""Speculative rounds priced one by one, pass by pass, for tests of the simulator's closed forms."""

from __future__ import annotations

import numpy as np

from lattts.simulator.roofline import pass_time


def round_s(target, draft, deploy, branches, gamma: int, committed: float) -> float:
    """One round of lattts' schedule with ``committed`` tokens committed: the draft's pass of the last
    two (q=2), gamma-1 passes of one, the target's verify of gamma+1 positions (seconds)."""
    c = committed
    return (float(pass_time(target, deploy, branches, gamma + 1, c - 1, gamma + 1))
            + float(pass_time(draft, deploy, branches, 2, c - 2, 1))
            + sum(float(pass_time(draft, deploy, branches, 1, c + j - 2, 1)) for j in range(2, gamma + 1)))


def leaving_cost_s(target, draft, deploy, rounds: np.ndarray, gamma: int, first_committed: float, mu: float) -> np.ndarray:
    """Per simulated run (rows of ``rounds``: each branch's rounds), every round priced at the branches
    still running, committed tokens growing by ``mu`` per round (the closed form's context)."""
    B, longest = rounds.shape[1], int(rounds.max())
    index = np.arange(longest)
    table = np.array([np.zeros(longest)] + [[round_s(target, draft, deploy, a, gamma, first_committed + r * mu)
                                             for r in index] for a in range(1, B + 1)])
    active = (rounds[:, :, None] > index[None, None, :]).sum(axis=1)  # (runs, round): branches still running
    return table[active, index[None, :]].sum(axis=1)
