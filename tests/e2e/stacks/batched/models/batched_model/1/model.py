"""Batched model: y[b] = x[b] * k[b, 0] + k[b, 1] for every row b of the batch."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy().astype(np.float32)  # [B, N]
            k = pb_utils.get_input_tensor_by_name(request, "k").as_numpy().astype(np.float32)  # [B, 2]
            y = (x * k[:, 0:1] + k[:, 1:2]).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("y", y)]))
        return responses
