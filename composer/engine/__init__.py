"""The Docker engine at the edge: containers, swarm services, exec, pulls, readiness."""
