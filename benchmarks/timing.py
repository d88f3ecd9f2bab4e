"""The one timing rule the benchmarks share: `warmup` untimed calls, then the median
wall time of `iters` calls (each call blocks until its result is ready)."""

import statistics
import time


def median_seconds(call, iters: int, warmup: int) -> float:
  for _ in range(warmup):
    call()
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return statistics.median(times)
