"""Rendered files: the lab's compose file and the swarm lab's stack file."""
