"""Training: the loop, the step, the state, losses, regularisers, EMA, spectra, sharding.

Kept import-light (no JAX here). The loop's errors derive from
biggan_jax.errors.TrainingError.
"""
