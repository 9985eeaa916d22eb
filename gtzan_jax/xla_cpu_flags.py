"""The XLA:CPU flags this model trains fastest with, put into XLA_FLAGS at `import gtzan_jax`.

XLA reads XLA_FLAGS once, when JAX starts its first backend, so `gtzan_jax`'s
`__init__` calls `tune()` before anything imports jax; this module must not
import jax either. The flags only change what XLA:CPU does; other backends
ignore them. The hand-written kernels for XLA:CPU are in `xla_cpu_kernels`.

Each flag was measured with `python -m gtzan_jax.benchmark` (BENCHMARKS.md,
"CPU: 2-core Intel Xeon", 2026-11-30): together they take the paper VGG from
8.3 to 22.3 training examples/s on 2 cores (`--notune_cpu` times XLA's defaults).
A process that only tags (predict's command line) swaps one of them for
INFERENCE_XLA_FLAG with `tune_for_inference()`.
"""

import importlib.metadata
import os

CPU_XLA_FLAGS = (
    # YNNPACK (XLA:CPU's kernel library since jaxlib 0.10) for matrix products and reductions only.
    # By default XLA:CPU also hands it convolution weight gradients, ~6x slower there than on Eigen,
    # and lowers every large reduction (BatchNorm's statistics and their gradients) to a
    # reduce-window, ~14x slower than YNNPACK's reduce.
    '--xla_cpu_experimental_ynn_fusion_type=dot,reduce',
    # The default scheduler, optimised for concurrency, was 4-9 % slower for the small VGG (same losses).
    '--xla_cpu_enable_concurrency_optimized_scheduler=false',
)
CPU_XLA_FLAGS_ADDED: list[str] = []  # the flags tune() (and tune_for_inference()) put into XLA_FLAGS

# For a process that only runs models forward (predict, tagging): YNNPACK takes the convolutions too.
# It runs the forward convolutions with 32 or more channels faster than Eigen, one row at a time
# (BENCHMARKS.md, "Tagging: a row's convolutions"), but their weight gradients ~6x slower, so
# training keeps CPU_XLA_FLAGS.
INFERENCE_XLA_FLAG = '--xla_cpu_experimental_ynn_fusion_type=dot,reduce,individual_convolution'


def ynn_takes_convolutions() -> bool:
  """Whether XLA_FLAGS, as it reads now, hands YNNPACK the convolutions (as INFERENCE_XLA_FLAG does).

  XLA read XLA_FLAGS when JAX started its backend: a change since then makes this answer
  wrong (xla_cpu_kernels then picks a slower kernel, never a wrong one).
  """
  types = ''
  for flag in os.environ.get('XLA_FLAGS', '').split():
    if flag.startswith('--xla_cpu_experimental_ynn_fusion_type='):
      types = flag.split('=', 1)[1]
  return any('convolution' in t for t in types.split(','))


def tune() -> None:
  """Adds CPU_XLA_FLAGS to XLA_FLAGS (must run before JAX starts a backend; CPU backend only).

  A flag already named in XLA_FLAGS keeps its value; GTZAN_JAX_TUNE_XLA=0 adds
  none; jaxlib < 0.10 (no YNNPACK) gets none.
  """
  if os.environ.get('GTZAN_JAX_TUNE_XLA', '1') == '0':
    return
  try:
    major, minor = (int(p) for p in importlib.metadata.version('jaxlib').split('.')[:2])
  except (importlib.metadata.PackageNotFoundError, ValueError):
    return
  if (major, minor) < (0, 10):
    return
  flags = os.environ.get('XLA_FLAGS', '')
  for flag in CPU_XLA_FLAGS:
    if flag.split('=')[0] not in flags:
      flags = f'{flags} {flag}'.strip()
      CPU_XLA_FLAGS_ADDED.append(flag)
  os.environ['XLA_FLAGS'] = flags


def tune_for_inference() -> None:
  """Swaps tune()'s YNNPACK flag for INFERENCE_XLA_FLAG in XLA_FLAGS (before JAX starts a backend).

  Only where tune() added it: a YNNPACK flag the user set stays theirs.
  """
  train_flag = CPU_XLA_FLAGS[0]
  if train_flag not in CPU_XLA_FLAGS_ADDED:
    return
  flags = [INFERENCE_XLA_FLAG if f == train_flag else f for f in os.environ.get('XLA_FLAGS', '').split()]
  os.environ['XLA_FLAGS'] = ' '.join(flags)
  CPU_XLA_FLAGS_ADDED[CPU_XLA_FLAGS_ADDED.index(train_flag)] = INFERENCE_XLA_FLAG
