"""tinycnn: design, train and explain tiny CNNs under a hard parameter budget."""
import os

# Same seed, same numbers on every x86-64 CPU with AVX2: oneDNN (convolutions) and ATen (the
# other kernels) pick code paths by instruction set, and AVX-512 paths sum in another order, so
# an AVX-512 machine and an AVX2 machine drift apart from the first epoch. Both read these
# variables once, when torch is first imported, so this must run before tinycnn imports torch.
# Set either variable yourself to choose otherwise (e.g. ATEN_CPU_CAPABILITY=default).
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")

__version__ = "0.1.0"
