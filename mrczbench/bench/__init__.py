"""The benchmark harness: suites, planning, the worker process, the measurement protocol,
timing and machine capture."""
