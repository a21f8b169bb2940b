"""Noise model: OUTPUT0 = INPUT0 after work_ms milliseconds (config parameter) of device time.

The work is a sleep, as a GPU model's kernels are to the host: the CPU is free meanwhile, so a CPU
load beside the lab disturbs the serving path (HTTP, the python backend's stub, perf_analyzer), not
the model's own time. bench_noise.py's B copy makes work_ms 25 % longer.
"""

import json
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.work_s = float(config["parameters"]["work_ms"]["string_value"]) / 1000.0

    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            time.sleep(self.work_s)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", data)]))
        return responses
