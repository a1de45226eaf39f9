"""Stand-in for ``comfy_api.latest``: the extension base class and the ``io`` namespace."""

from abc import ABC, abstractmethod

from . import _io as io


class ComfyExtension(ABC):
    async def on_load(self) -> None:
        """Called once when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list:
        """The node classes the extension provides."""


__all__ = ["ComfyExtension", "io"]
