"""What decides a float computation's last bits on this machine: the CPU's vector instructions.

TensorFlow picks its kernels by the instruction sets the CPU offers (AVX2, AVX-512, ...): the
same program trains to bit-identical weights on CPUs that offer the same ones, and to weights
that differ in their last bits (then in their trajectory) on others.
"""

from __future__ import annotations

import platform

# The CPU flags TensorFlow's and oneDNN's x86 kernels choose between.
_VECTOR_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                 "amx_tile")


def cpu_instructions() -> str:
    """The machine's architecture and vector instruction sets, e.g. ``"x86_64 avx avx2 fma"``.

    Read from ``/proc/cpuinfo`` where there is one; elsewhere the architecture alone.
    """
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return " ".join([platform.machine()] + [flag for flag in _VECTOR_FLAGS if flag in flags])
