"""How fast could the train step be if everything but the convolutions were free?

  python scripts/conv_bound.py --config=configs/paper.py --batch_size=64 [--rounds=3]

Times each convolution of the config's model alone, on one random batch of its
real input shape: the forward pass (as the model runs it, through
`models.conv_general_dilated`), the input gradient (not for the first layer,
whose input is not differentiated) and the kernel gradient (XLA's own, transposes
included). Their sum bounds the train step from below, and `batch / sum` bounds
its examples/s from above, for this backend's convolution kernels. Also prints
the measured train step, the PyTorch VGG's (if torch is installed), and a large
float32 matrix product's GFLOP/s, the backend's practical peak. Best of
--rounds for every timer.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gtzan_jax  # noqa: E402,F401  (sets the XLA:CPU flags before jax starts)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from gtzan_jax import benchmark, models  # noqa: E402


def best_ms(fn, *args, rounds: int, calls: int = 10) -> float:
  jax.block_until_ready(fn(*args))
  best = float('inf')
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(calls):
      out = fn(*args)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - start) / calls)
  return 1e3 * best


def model_convolutions(config, batch_size: int) -> list[tuple[tuple, tuple, Callable]]:
  """(input shape, kernel shape, conv(x, kernel)) of every convolution, in order."""
  found, inner = [], models.conv_general_dilated

  def recording(lhs, rhs, *args, **kwargs):
    found.append((lhs.shape, rhs.shape, lambda x, kernel: inner(x, kernel, *args, **kwargs)))
    return inner(lhs, rhs, *args, **kwargs)

  models.conv_general_dilated = recording
  try:
    model = models.create_model(config)
    jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                   jnp.zeros((batch_size, benchmark.N_MELS, benchmark.N_FRAMES)))
  finally:
    models.conv_general_dilated = inner
  return found


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/paper.py')
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args()
  spec = importlib.util.spec_from_file_location('config', args.config)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()

  print(f'{jax.devices()[0].device_kind}, {args.config}, batch {args.batch_size}, float32')
  print('| input | kernel | forward ms | input grad ms | kernel grad ms |\n|---|---|---|---|---|')
  totals = [0.0, 0.0, 0.0]
  for i, (x_shape, k_shape, conv) in enumerate(model_convolutions(config, args.batch_size)):
    x = jax.random.normal(jax.random.PRNGKey(0), x_shape)
    kernel = jax.random.normal(jax.random.PRNGKey(1), k_shape)
    g = jnp.ones(jax.eval_shape(conv, x, kernel).shape)
    dx = jax.jit(lambda g, kernel, x=x, conv=conv: jax.vjp(lambda x: conv(x, kernel), x)[1](g)[0])
    dk = jax.jit(lambda g, x, kernel=kernel, conv=conv: jax.vjp(lambda k: conv(x, k), kernel)[1](g)[0])
    times = [best_ms(jax.jit(conv), x, kernel, rounds=args.rounds),
             best_ms(dx, g, kernel, rounds=args.rounds) if i else 0.0,
             best_ms(dk, g, x, rounds=args.rounds)]
    totals = [t + u for t, u in zip(totals, times)]
    print(f'| {x_shape} | {k_shape} | {times[0]:.1f} | {times[1]:.1f} | {times[2]:.1f} |', flush=True)
  conv_s = sum(totals) / 1e3
  print(f'| total | | {totals[0]:.0f} | {totals[1]:.0f} | {totals[2]:.0f} |')

  timers = {}
  timers['jax'], info = benchmark.train_timer(config, args.batch_size, steps=3)
  if config.model == 'vgg':
    try:
      from gtzan_jax import torch_peer  # pylint: disable=g-import-not-at-top
      timers['torch'], _ = torch_peer.make_train_timer(config.vgg.widths, args.batch_size, 3)
    except ImportError:
      print('(no torch: pip install -e .[bench] for the PyTorch figure)')
  rates = benchmark.best_rates(timers, args.rounds)
  step_rate = rates['jax']
  a = jnp.ones((4096, 4096))
  matmul_s = best_ms(jax.jit(lambda a: a @ a), a, rounds=args.rounds) / 1e3
  print(f'convolutions alone: {conv_s:.3f} s per step -> at most {args.batch_size / conv_s:.1f} examples/s')
  print(f'measured train step: {args.batch_size / step_rate:.3f} s -> {step_rate:.1f} examples/s '
        f'({100 * conv_s * step_rate / args.batch_size:.0f} % of it in the convolutions)')
  gflop = (info['step_flops'] or 0) / 1e9
  print(f'step FLOPs {gflop:.1f} G: {gflop * step_rate / args.batch_size:.0f} GFLOP/s; '
        f'a 4096^3 float32 matrix product: {2 * 4096 ** 3 / matmul_s / 1e9:.0f} GFLOP/s')
  if 'torch' in rates:
    print(f"PyTorch (same VGG, batch, run): {rates['torch']:.1f} examples/s; JAX {step_rate / rates['torch']:.2f}x, "
          f"the convolutions' bound {args.batch_size / conv_s / rates['torch']:.2f}x")


if __name__ == '__main__':
  main()
