"""Accuracy measured from traces: sampled answers per problem, graded, at one or more length budgets.

- ``format``: the lattts trace format (one row per sample), its loader and writer.
- ``readers``: ``load_traces`` for any supported file; raw evaluation outputs (Qwen2.5-Math harness,
  Sky-T1) turned into trace rows.
- ``groups``: per problem and budget, how many samples gave each answer.
- ``majority``: exact P(majority of B samples is correct) per problem, and pass@k.
- ``truncate``: lengths below the generated length, by cutting samples at L tokens.
- ``curve``: accuracy(B, L) with bootstrap intervals, and ``MeasuredCurve`` for ``lattts predict``.
- ``acceptance``: measured speculative-decoding acceptance as an ``AcceptanceModel``.
- ``measure``, ``benchmark``, ``answers``, ``journal``: ``lattts measure``: benchmark rows in, the live
  engine under budget forcing, ``\boxed{}`` extraction and math-verify grading, a resumable output file.

Nothing here imports torch at import time (``measure`` loads the engine when it runs).
"""
