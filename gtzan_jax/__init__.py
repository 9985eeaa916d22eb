"""gtzan_jax: music genre classification on GTZAN mel spectrograms with JAX/Flax."""

import importlib.metadata
import os

# YNNPACK, XLA:CPU's kernel library since jaxlib 0.10, for matrix products and reductions only.
# By default XLA:CPU also hands it convolution weight gradients, which run ~6x slower there than
# on Eigen for this model, and lowers every large reduction (BatchNorm's statistics and their
# gradients) to a reduce-window that runs ~14x slower than YNNPACK's reduce on our 2-core x86
# machines. Both measured with gtzan_jax.benchmark; see BENCHMARKS.md.
CPU_XLA_FLAG = '--xla_cpu_experimental_ynn_fusion_type=dot,reduce'
CPU_XLA_FLAG_ADDED = False  # whether _tune_xla_cpu put CPU_XLA_FLAG into XLA_FLAGS


def _tune_xla_cpu() -> None:
  """Adds CPU_XLA_FLAG to XLA_FLAGS (must run before JAX starts a backend; CPU backend only).

  An explicit --xla_cpu_experimental_ynn_fusion_type in XLA_FLAGS wins;
  GTZAN_JAX_TUNE_XLA=0 turns this off; jaxlib < 0.10 has no YNNPACK.
  """
  global CPU_XLA_FLAG_ADDED
  flags = os.environ.get('XLA_FLAGS', '')
  if os.environ.get('GTZAN_JAX_TUNE_XLA', '1') == '0' or CPU_XLA_FLAG.split('=')[0] in flags:
    return
  try:
    major, minor = (int(p) for p in importlib.metadata.version('jaxlib').split('.')[:2])
  except (importlib.metadata.PackageNotFoundError, ValueError):
    return
  if (major, minor) >= (0, 10):
    os.environ['XLA_FLAGS'] = f'{flags} {CPU_XLA_FLAG}'.strip()
    CPU_XLA_FLAG_ADDED = True


_tune_xla_cpu()
