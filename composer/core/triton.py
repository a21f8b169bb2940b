"""Facts about a lab's containers that every layer shares: service names, the network, Triton's ports."""

SERVER, ANALYZER = "triton_server", "perf_analyzer"
STACK_SECTION = {SERVER: "server", ANALYZER: "analyzer"}  # where stack.yaml sets each service's fields
NETWORK = "tis_net"  # the compose key of the lab's one network; the engine's name is <lab>_tis_net
SERVER_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
METRICS_URL = f"{SERVER}:{SERVER_PORTS['metrics']}/metrics"  # as the analyzer (and the scraper's record) name it
