"""The origin story's model: each request names a file (data_path) on a volume mounted at /data;
the model opens it, as a real feature-lookup model opens its store, and scores with what it read."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            path = pb_utils.get_input_tensor_by_name(request, "data_path").as_numpy().reshape(-1)[0]
            age = pb_utils.get_input_tensor_by_name(request, "age").as_numpy().astype(np.float32)
            gender = pb_utils.get_input_tensor_by_name(request, "gender").as_numpy().astype(np.float32)
            with open(path.decode() if isinstance(path, bytes) else str(path), encoding="utf-8") as handle:
                weight = np.float32(json.load(handle)["weight"])
            score = (age * weight + gender).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("score", score)]))
        return responses
