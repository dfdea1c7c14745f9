"""The GPU peak table tells card variants apart by the name torch reports."""
from __future__ import annotations

import pytest

from benchmark.training.trainer import gpu_peak_flops


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
