"""Facts about a lab's containers that every layer shares: service names and Triton's ports."""

SERVER, ANALYZER = "triton_server", "perf_analyzer"
SERVER_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
