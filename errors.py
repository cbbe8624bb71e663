"""The one error type that users see: it names the node and the input."""


class NodeInputError(ValueError):
    def __init__(self, node: str, input_name: str, message: str):
        super().__init__(f"{node} › {input_name}: {message}")
        self.node = node
        self.input_name = input_name
