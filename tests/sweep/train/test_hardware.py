"""Which device a run trains on: a run holding a GPU share never trains on the CPU silently."""

import pytest
import torch

from sweep.train.hardware import resolve_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without CUDA does")


def test_a_run_holding_a_gpu_share_refuses_a_torch_without_cuda():
    with pytest.raises(RuntimeError) as err:
        resolve_device("auto", gpu_share=0.25)
    message = str(err.value)
    assert "holds 0.25 of a GPU" in message and "sees no GPU" in message
    assert "CPU-only build" in message or "built for CUDA" in message
    assert "cluster.gpus_per_run=0" in message  # the way out


def test_auto_without_a_gpu_share_trains_on_the_cpu_and_cuda_without_a_gpu_is_refused():
    assert resolve_device("auto") == "cpu" and resolve_device("auto", gpu_share=0.0) == "cpu"
    assert resolve_device("cpu", gpu_share=0.5) == "cpu"  # asked for explicitly
    with pytest.raises(RuntimeError, match="no GPU is visible"):
        resolve_device("cuda")
