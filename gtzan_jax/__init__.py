"""gtzan_jax: music genre classification on GTZAN mel spectrograms with JAX/Flax."""

import importlib.metadata
import os


def _tune_xla_cpu() -> None:
  """Keeps XLA:CPU's convolution gradients on Eigen (must run before JAX starts a backend).

  Since jaxlib 0.10, XLA:CPU hands convolution weight gradients to YNNPACK by
  default, which runs this model's ~6x slower than Eigen on our 2-core x86
  machines (gtzan_jax.benchmark measures it); restricting YNNPACK to `dot`
  fusions avoids that. The flag only concerns the CPU backend. An explicit
  setting in XLA_FLAGS wins; GTZAN_JAX_TUNE_XLA=0 turns this off.
  """
  flag = '--xla_cpu_experimental_ynn_fusion_type'
  flags = os.environ.get('XLA_FLAGS', '')
  if os.environ.get('GTZAN_JAX_TUNE_XLA', '1') == '0':
    return
  try:
    major, minor = (int(p) for p in importlib.metadata.version('jaxlib').split('.')[:2])
  except (importlib.metadata.PackageNotFoundError, ValueError):
    return
  if (major, minor) >= (0, 10) and flag not in flags:
    os.environ['XLA_FLAGS'] = f'{flags} {flag}=dot'.strip()


_tune_xla_cpu()
