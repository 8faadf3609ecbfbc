"""The empirical half of lattts: time real forward passes on a device and fit a profile.

- ``grid``: which (B, q, s) points to time; ``sweep``: timing them resumably, behind a runner
  interface (torch engine, transformers, fakes); ``measurements``: the CSV and drift correction;
- ``machine``: the machine's measured stream bandwidth and matmul rate (fit bounds);
- ``fit``: the profile's physical parameters by least squares, with held-out and cross-model errors;
- ``run``: the whole calibration, with provenance, saved where ``lattts predict`` finds it.
"""
