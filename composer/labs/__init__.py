"""Labs end to end: plan, local and swarm lifecycles, one benchmark on a lab, the release matrix."""
