"""A run's numbers after the fact: client merge, Triton's metrics, run comparison."""
