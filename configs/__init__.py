"""The shipped get_config() files; installed as biggan_jax.configs (setup.cfg)."""
