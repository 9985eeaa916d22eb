"""gtzan_jax: music genre classification on GTZAN mel spectrograms with JAX/Flax."""
