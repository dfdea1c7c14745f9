"""The GPU peak table tells card variants apart by the name torch reports; the CPU peak is measured without touching
the run's random state."""
from __future__ import annotations

import pytest
import torch

from benchmark.training.trainer import gpu_peak_flops, measure_matmul_peak


@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H100 PCIe", 756), ("NVIDIA H100 NVL", 835),
    ("NVIDIA H200", 989), ("NVIDIA H200 NVL", 835), ("NVIDIA GH200 480GB", 989),
    ("NVIDIA A100-SXM4-80GB", 312), ("NVIDIA A100 80GB PCIe", 312), ("NVIDIA L40S", 362), ("NVIDIA L40", 181),
    ("NVIDIA L4", 121), ("NVIDIA A10G", 70), ("NVIDIA A10", 125),
])
def test_card_variants(name, tflops):
    assert gpu_peak_flops(name) == tflops * 1e12


def test_unknown_card_has_no_peak():
    assert gpu_peak_flops("Some Future Card") is None


def test_cpu_peak_leaves_the_global_random_state_alone():
    """The train stage measures the CPU peak after a run's weights are drawn: its operands come from a generator of
    their own, so measuring (or not) never changes what the global generator draws next."""
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    assert measure_matmul_peak(seconds=0.1, n=64) > 0
    assert torch.equal(torch.rand(4), expected)
