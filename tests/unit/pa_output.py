"""perf_analyzer -v output, as 2.51 printed it, shared by the tests that read it."""

# perf_analyzer 2.51 -v on the quickstart, concurrency 1, with --stability-percentage 0.001 --max-trials 3: exit code 2
FIRST_UNSTABLE = """\
Request concurrency: 1
  Pass [1] throughput: 3025.09 infer/sec. Avg latency: 324 usec (std 112 usec).
  Pass [2] throughput: 3317.8 infer/sec. Avg latency: 295 usec (std 130 usec).
  Pass [3] throughput: 3137.02 infer/sec. Avg latency: 311 usec (std 122 usec).
Failed to obtain stable measurement within 3 measurement windows for concurrency 1. Please try to \
increase the --measurement-request-count.
Failed to obtain stable measurement.
"""
