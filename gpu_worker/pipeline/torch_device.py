"""Which torch device the optional torch stages (separation, alignment, punctuation) run on.

Kept apart from the Whisper registry because these stages use torch, not CTranslate2; torch is
imported lazily so importing a stage module stays cheap.
"""

from __future__ import annotations

from shared.settings import DeviceChoice, Settings


def torch_device(settings: Settings) -> str:
    """CUDA when torch sees a GPU and DEVICE is not `cpu`; otherwise CPU.

    DEVICE=cuda on a host without a GPU is refused once, by the Whisper registry, before any stage
    runs; here it simply falls back to CPU.
    """
    if settings.device is DeviceChoice.CPU:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
