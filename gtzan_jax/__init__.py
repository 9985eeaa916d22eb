"""gtzan_jax: music genre classification on GTZAN mel spectrograms with JAX/Flax."""

# Before anything imports jax: XLA reads XLA_FLAGS when it starts its first backend.
from gtzan_jax import xla_cpu_flags
from gtzan_jax.xla_cpu_flags import CPU_XLA_FLAGS, CPU_XLA_FLAGS_ADDED  # noqa: F401  (benchmark, tests)

xla_cpu_flags.tune()
