"""tinycnn: design, train and explain tiny CNNs under a hard parameter budget."""
import os

# Same seed, same numbers on every x86-64 CPU with AVX2: oneDNN (convolutions) and ATen (the
# other kernels) pick code paths by instruction set, and AVX-512 paths sum in another order, so
# an AVX-512 machine and an AVX2 machine drift apart from the first epoch. Both read these
# variables once, when torch is first imported, so this must run before tinycnn imports torch
# (a notebook that imported torch first keeps its own choice: the run's metrics record the kernels
# used). TINYCNN_NATIVE_ISA=1, or setting either variable yourself, chooses otherwise.
if os.environ.get("TINYCNN_NATIVE_ISA") != "1":
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")

__version__ = "0.1.0"
