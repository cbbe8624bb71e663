"""The one error type that users see: it names the node and the input."""
import math


class NodeInputError(ValueError):
    def __init__(self, node: str, input_name: str, message: str):
        super().__init__(f"{node} › {input_name}: {message}")
        self.node = node
        self.input_name = input_name


def require_finite(node: str, **values):
    """ComfyUI's range checks let NaN through (every comparison with it is false)."""
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise NodeInputError(node, name, f"{value} is not a number this input can take; give a finite value")
