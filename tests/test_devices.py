"""The devices a run may use, the precision it computes in, and backend settings."""

import pytest
import torch

from estilo.config import UserError
from estilo.devices import DeviceError, compute_dtype, describe, resolve_device, tune


def test_auto_picks_an_available_device_and_cpu_is_always_there():
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(("name", "said"), [
    ("tpu", "unknown device 'tpu': use auto, cpu, cuda, cuda:N or mps"),
    ("meta", "unsupported device 'meta'"),
])
def test_unknown_devices_are_one_line_user_errors(name, said):
    with pytest.raises(DeviceError) as info:
        resolve_device(name)
    assert str(info.value).startswith(said) and "\n" not in str(info.value)
    assert isinstance(info.value, UserError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine has CUDA")
def test_cuda_without_cuda_says_to_use_the_cpu():
    with pytest.raises(DeviceError, match="CUDA is not available.*--device cpu"):
        resolve_device("cuda")


def test_precision():
    cpu = torch.device("cpu")
    assert compute_dtype(cpu, "float32") == torch.float32
    assert compute_dtype(cpu, "bfloat16") == torch.bfloat16
    assert compute_dtype(cpu, "auto") in (torch.float32, torch.bfloat16)
    assert compute_dtype(torch.device("mps"), "auto") == torch.float32


def test_describe_names_the_cpu_threads():
    assert describe(torch.device("cpu")) == f"cpu ({torch.get_num_threads()} threads)"


def test_tuning_the_cpu_changes_no_backend_setting():
    before = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
    tune(torch.device("cpu"))
    assert (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32) == before
