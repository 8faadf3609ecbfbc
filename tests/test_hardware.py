"""Device table, NVML detection through a fake, and the device-choice rules."""

import pytest

from conftest import FakeNvml, nvml_error
from lattts.errors import UserError
from lattts.hardware.choose import Detection, choose_profile, detect
from lattts.hardware.cpu import detect_cpu
from lattts.hardware.devices import device_table, find_device, match_nvml_name
from lattts.hardware.nvml import NvmlUnavailable, query_gpus

H100 = {"name": "NVIDIA H100 80GB HBM3", "memory": 85520809984, "uuid": "GPU-abc"}


def test_every_row_cites_a_source_and_required_devices_exist():
    keys = {d.key for d in device_table()}
    assert {"h100-sxm", "h100-pcie", "h200", "a100-sxm-40gb", "a100-sxm-80gb", "l40s", "rtx-4090", "a10g", "cpu"} <= keys
    for d in device_table():
        assert d.source
        if d.kind == "gpu":
            assert d.peak_flops["bf16"] > d.peak_flops["fp32"] > 0 and d.mem_bw_bytes_per_s > 0


def test_datasheet_numbers():
    h100 = find_device("H100 SXM")
    assert h100.peak_flops["bf16"] == 989.4e12 and h100.mem_bw_bytes_per_s == 3.35e12  # NVIDIA H100 datasheet
    assert find_device("a100-sxm-40gb").mem_bw_bytes_per_s == 1.555e12  # NVIDIA A100 datasheet


@pytest.mark.parametrize("nvml_name,key", [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
    ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"), ("NVIDIA A100-SXM4-40GB", "a100-sxm-40gb"),
    ("NVIDIA L40S", "l40s"), ("NVIDIA GeForce RTX 4090", "rtx-4090"), ("NVIDIA A10G", "a10g"),
])
def test_nvml_names_map_to_rows(nvml_name, key):
    assert match_nvml_name(nvml_name).key == key


def test_unknown_gpu_maps_to_nothing():
    assert match_nvml_name("NVIDIA GeForce GTX 1080") is None


def test_query_gpus_with_fake_nvml():
    gpus = query_gpus(FakeNvml([H100]))
    assert gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].driver == "550.54.15"
    assert gpus[0].sm_clock_max_mhz == 1980 and gpus[0].memory_bytes == H100["memory"]


@pytest.mark.parametrize("error,text", [
    ("NVMLError_LibraryNotFound", "not found"), ("NVMLError_DriverNotLoaded", "not loaded"),
    ("NVMLError_NoPermission", "permission"),
])
def test_nvml_errors_become_one_line_reasons(error, text):
    with pytest.raises(NvmlUnavailable, match=text):
        query_gpus(FakeNvml(init_error=nvml_error(error)))


def test_choice_without_gpu_falls_back_to_h100_and_says_why():
    det = Detection(gpus=(), nvml_error="no driver", cpu=detect_cpu())
    choice = choose_profile(detection=det)
    assert choice.profile.device_key == "h100-sxm" and "no GPU detected" in choice.reason


def test_choice_uses_detected_gpu_row():
    det = detect(FakeNvml([{"name": "NVIDIA L40S", "memory": 48 * 2**30}]))
    choice = choose_profile(detection=det)
    assert choice.profile.device_key == "l40s" and "detected GPU 0" in choice.reason


def test_choice_for_unknown_gpu_says_so():
    det = detect(FakeNvml([{"name": "NVIDIA GeForce GTX 1080", "memory": 8 * 2**30}]))
    choice = choose_profile(detection=det)
    assert choice.profile.device_key == "h100-sxm" and "not in the device table" in choice.reason


def test_cpu_without_calibration_is_a_user_error():
    with pytest.raises(UserError, match="lattts calibrate --device cpu"):
        choose_profile(device="cpu")


def test_unknown_device_suggests():
    with pytest.raises(UserError, match="did you mean"):
        find_device("h100-sx")


@pytest.mark.parametrize("nvml_name,key", [("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb")])
def test_detected_h100_and_a100_use_their_measured_profiles(nvml_name, key):
    choice = choose_profile(detection=detect(FakeNvml([{"name": nvml_name, "memory": 80 * 2**30}])))
    assert choice.profile.device_key == key and choice.profile.kind == "measured"
    assert choice.profile.source.startswith("fitted to Vidur kernel timings")


def test_fallback_is_the_measured_h100_and_other_rows_say_whose_efficiencies():
    det = Detection(gpus=(), nvml_error="no driver", cpu=detect_cpu())
    fallback = choose_profile(detection=det)
    assert fallback.profile.kind == "measured" and "H100 SXM5 80GB profile" in fallback.reason
    h200 = choose_profile(detection=detect(FakeNvml([{"name": "NVIDIA H200", "memory": 141 * 2**30}]))).profile
    assert h200.kind == "datasheet" and "efficiencies of the NVIDIA H100 SXM5 80GB profile" in h200.source
    l40s = choose_profile(device="l40s").profile
    assert "mean efficiencies" in l40s.source and l40s.matmul_kernel_s > 0


def test_a_live_gpu_run_is_checked_against_the_gpus_free_memory():
    # the CPU path reads MemAvailable; a GPU's free memory comes from NVML, through the same check
    from lattts.engine.memory import available_bytes, check_fits

    busy = FakeNvml([{**H100, "free": 10 * 10**9}])  # 10 GB of 85.5 left: another process holds the rest
    assert available_bytes("cuda:0", busy) == 10 * 10**9
    check_fits(9e9, "the run", "lower --branches", "cuda:0", busy)
    with pytest.raises(UserError, match=r"the run needs about .* more than the 10 GB available on cuda:0; lower --branches"):
        check_fits(12e9, "the run", "lower --branches", "cuda:0", busy)
    # without NVML there is no figure to check against, and the run goes ahead (it fails in torch if too big)
    assert available_bytes("cuda:0", FakeNvml(init_error=nvml_error("NVMLError_DriverNotLoaded"))) is None
    check_fits(1e15, "the run", "lower --branches", "cuda:0", FakeNvml(init_error=nvml_error("NVMLError_DriverNotLoaded")))
