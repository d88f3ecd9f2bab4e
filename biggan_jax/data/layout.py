"""How a global batch splits into D steps, micro-batches and hosts.

Images (num_d_steps, num_accumulations, per_host_micro_batch, R, R, 3) and
labels (num_d_steps, num_accumulations, per_host_micro_batch): one fresh real
batch per D step; host i holds rows [i n, (i + 1) n) of every global
micro-batch (training/sharding.py's host_to_global).
"""

import jax


def per_host_micro_batch(config, process_count: int | None = None) -> int:
  micro = config.batch_size // config.num_accumulations
  return micro // (jax.process_count() if process_count is None else process_count)


def host_layout(config, process_count: int) -> tuple[int, int, int]:
  """(examples per host per iteration, per-host micro-batch, global micro-batch)."""
  n = per_host_micro_batch(config, process_count)
  micro = config.batch_size // config.num_accumulations
  return config.num_d_steps * config.num_accumulations * n, n, micro
