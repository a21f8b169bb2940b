"""A model that refuses to load: tisbench must report Triton's load failure, not time out."""


class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("tisbench test: broken model refuses to load")

    def execute(self, requests):
        return []
