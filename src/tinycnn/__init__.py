"""tinycnn: design, train and explain tiny CNNs under a hard parameter budget."""
import os

# Same seed, same numbers on every x86-64 CPU with AVX2: oneDNN (convolutions), ATen (the other
# kernels) and MKL (matrix products, e.g. the augmentation's affine grids) pick code paths by
# CPU, and other paths sum in another order, so two machines drift apart from the first epoch.
# MKL's own reproducibility mode (CBWR) fixes its path; without it, a Xeon with AVX-512 and AMX
# gave seed 0 another first epoch than an AVX2 machine and another AVX-512 one (train loss
# 0.328696 against 0.328979), although oneDNN and ATen were pinned. All three read these
# variables once, when torch is first imported, so this must run before tinycnn imports torch
# (a notebook that imported torch first keeps its own choice: the run's metrics record the kernels
# used). TINYCNN_NATIVE_ISA=1, or setting any of these variables yourself, chooses otherwise.
PINNED_KERNELS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                  "MKL_CBWR": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
if os.environ.get("TINYCNN_NATIVE_ISA") != "1":
    for _name, _value in PINNED_KERNELS.items():
        os.environ.setdefault(_name, _value)

__version__ = "0.1.0"

# The Python API (api.py), `from tinycnn import fit, summary, evaluate, predict, export`, loads on
# first use: `tinycnn --help` and a mistyped option stay quick without torch.
API = ("fit", "summary", "evaluate", "predict", "export", "Trained", "Summary")


def __getattr__(name: str):
    if name in API:
        from tinycnn import api
        return getattr(api, name)
    raise AttributeError(f"module 'tinycnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
