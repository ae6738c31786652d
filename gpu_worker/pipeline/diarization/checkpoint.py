"""Read the tensors of a PyTorch (Lightning) checkpoint without the code that wrote it.

pyannote's checkpoints pickle objects of their own (omegaconf hyper-parameters, pyannote task
specifications) next to the weights. Neither pyannote.audio nor omegaconf needs to be importable
here: the unpickler maps every class outside a small allow-list of torch/numpy/plain builtins to an inert
stand-in, so loading only ever yields tensors and plain containers, never runs foreign code.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

_ALLOWED_MODULES = ("torch", "collections", "numpy", "_codecs")
_SAFE_BUILTINS = frozenset(
    {"set", "frozenset", "list", "dict", "tuple", "int", "float", "complex", "bytearray", "slice"}
)


class _Placeholder:
    """Stands in for any class the checkpoint names that we neither need nor trust."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:
        return self


class _TolerantUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        package = module.split(".")[0]
        allowed = package in _ALLOWED_MODULES or (module == "builtins" and name in _SAFE_BUILTINS)
        return super().find_class(module, name) if allowed else _Placeholder


_pickle_module = types.SimpleNamespace(
    Unpickler=_TolerantUnpickler,
    load=lambda file, **kwargs: _TolerantUnpickler(file, **kwargs).load(),
    __name__="tolerant_pickle",
)


def load_state_dict(path: Path) -> dict[str, Any]:
    """The checkpoint's `state_dict` (or the file itself when it is a bare state dict)."""
    import torch

    loaded = torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_pickle_module)
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} holds no state dict")
    return state
