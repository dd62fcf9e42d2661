"""GFNet inference from spectrans-rs (Rust), NumPy in and NumPy out.

Type stubs of the compiled module; see docs/python.md.
"""

import os
from typing import Any, Literal, Mapping, Optional, Union

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, "os.PathLike[str]"]
#: A TOML config path, or a dict of the TOML's structure (``{"model": {...}, "layers": {...}}``)
#: or of the ``[model]`` fields alone.
ConfigLike = Union[PathLike, Mapping[str, Any]]
#: A NumPy array or anything with ``__array__`` (a torch tensor, a list).
ArrayLike = npt.ArrayLike
#: The number format of the Linear layers (docs/precision.md).
Precision = Literal["f32", "bf16", "int8"]

class GFNet:
    """A GFNet (or GFNetEncoder) model, run from NumPy arrays.

    ``model(input_ids=None, inputs_embeds=None, attention_mask=None)`` returns float32:
    (B, C) for classification and regression heads, (B, N, C) for sequence and lm heads,
    (B, N, D) hidden states without a head. The GIL is released while it runs.
    """

    def __init__(
        self,
        config: ConfigLike,
        *,
        seed: int = 0,
        threads: Optional[int] = None,
        precision: Precision = "f32",
    ) -> None:
        """A new model initialised as spectrans does, seeded."""

    @staticmethod
    def from_files(
        config: ConfigLike,
        weights: PathLike,
        *,
        threads: Optional[int] = None,
        precision: Precision = "f32",
    ) -> "GFNet":
        """A model from a config and a safetensors file (PyTorch state_dict names), strictly:
        every missing, unexpected, misshapen or non-finite tensor in one ValueError; OSError
        for a file that cannot be read."""

    @staticmethod
    def from_state_dict(
        config: ConfigLike,
        state_dict: Mapping[str, ArrayLike],
        *,
        threads: Optional[int] = None,
        precision: Precision = "f32",
    ) -> "GFNet":
        """A model from a config and a mapping of PyTorch names to arrays, as strictly as
        ``from_files``: ``{k: v.numpy() for k, v in torch_model.state_dict().items()}``."""

    def __call__(
        self,
        input_ids: Optional[ArrayLike] = None,
        inputs_embeds: Optional[ArrayLike] = None,
        attention_mask: Optional[ArrayLike] = None,
    ) -> npt.NDArray[np.float32]:
        """The eval-mode forward pass (spectrans' ``forward``)."""

    def forward(
        self,
        input_ids: Optional[ArrayLike] = None,
        inputs_embeds: Optional[ArrayLike] = None,
        attention_mask: Optional[ArrayLike] = None,
    ) -> npt.NDArray[np.float32]:
        """Same as calling the model."""

    def save(self, path: PathLike) -> None:
        """Writes the weights as safetensors (PyTorch names), atomically."""

    def state_dict(self) -> dict[str, npt.NDArray[np.float32]]:
        """Every parameter and buffer by PyTorch name, as float32 arrays."""

    @property
    def config(self) -> dict[str, Any]:
        """The config with every value written out, in the TOML's structure."""

    @property
    def num_parameters(self) -> int:
        """The number of scalar parameters (buffers excluded)."""

    @property
    def precision(self) -> Precision:
        """The Linear layers' number format: "f32" (parity), "bf16" or "int8"."""

    @property
    def threads(self) -> int:
        """The number of threads a forward pass runs on."""

def validate(config: ConfigLike) -> list[str]:
    """Every problem of a config, one string each naming its field; [] when valid."""

def set_threads(threads: Optional[int]) -> None:
    """Threads of the pool shared by models built without ``threads=`` (None: rayon's default)."""

def get_threads() -> int:
    """Threads of the pool shared by models built without ``threads=``."""
