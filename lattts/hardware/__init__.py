"""Devices: the datasheet table, GPU detection through NVML, the host CPU, saved calibrations."""
