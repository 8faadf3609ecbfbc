"""lattts: latency-aware test-time scaling.

An analytical roofline simulator (``lattts.simulator``) plus an empirical calibrator
(``lattts.calibrate``) that answer: on this device, with this model, which number of
branches B, draft length gamma and length budget L is most accurate within T seconds?
"""

__version__ = "0.1.0"
