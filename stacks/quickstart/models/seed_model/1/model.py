"""Seed model: score = age * 0.5 + gender; the string inputs only travel with the request."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            age = pb_utils.get_input_tensor_by_name(request, "age").as_numpy()
            gender = pb_utils.get_input_tensor_by_name(request, "gender").as_numpy()
            try:
                score = (age.astype(np.float32) * np.float32(0.5) + gender.astype(np.float32)).astype(np.float32)
            except ValueError as exc:  # shapes that cannot broadcast
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"age/gender: {exc}")))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("score", score)]))
        return responses
