"""A python model with a dependency the server image lacks: Pillow. It draws the request's values
as a grayscale image and answers with the image's mean, so every request goes through PIL."""

import numpy as np
import triton_python_backend_utils as pb_utils
from PIL import Image, ImageStat


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            pixels = pb_utils.get_input_tensor_by_name(request, "pixels").as_numpy().astype(np.float32)
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8).reshape(1, -1), mode="L")
            mean = np.array([ImageStat.Stat(image).mean[0]], dtype=np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("mean", mean)]))
        return responses
