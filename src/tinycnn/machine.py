"""What machine a figure was measured on: the one description used by runs, benchmarks and exports.

Kernels are chosen by CPU (oneDNN and ATen for training, onnxruntime's MLAS for int8 models), so
a figure names the kernels it was measured with, not just the processor.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def machine_description(device: str = "cpu", threads: int = 1, processes: int = 1) -> str:
    """E.g. "x86_64 CPU, 2 cores, 1 thread(s), AVX2 kernels, MKL AVX2 (torch 2.13.0+cpu)": the
    kernels ATen chose and the code path MKL was held to (tinycnn/__init__.py pins both)."""
    if torch.cuda.is_available() and device != "cpu":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    mkl = f", MKL {os.environ['MKL_CBWR']}" if os.environ.get("MKL_CBWR") else ", MKL free"
    each = f"{processes} processes of {threads} thread(s)" if processes > 1 else f"{threads} thread(s)"
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores, {each}, "
            f"{torch.backends.cpu.get_cpu_capability()} kernels{mkl} (torch {torch.__version__})")


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags as Linux lists them; None where there is no /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return set(next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags")), "").split())


def int8_kernels() -> str:
    """Which family of integer kernels onnxruntime picks on this CPU (it reads the same flags)."""
    flags = cpu_flags()
    if flags is None:
        return f"{platform.machine()} (CPU flags unknown: no /proc/cpuinfo)"
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "x86 VNNI (vpdpbusd: int32 sums)"
    if "avx2" in flags:
        return "x86 AVX2 without VNNI (vpmaddubsw: int16 pair sums)"
    return f"{platform.machine()} without x86 AVX2"
