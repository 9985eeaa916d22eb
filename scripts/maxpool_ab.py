"""A/B of the VGG's 2x2 max-pool: `xla_cpu_kernels.max_pool_2x2` (custom VJP) against `nn.max_pool`.

  python scripts/maxpool_ab.py [--small_steps=10] [--paper_steps=2] [--rounds=4] [--loss_steps=3]

In one process, for the small VGG (configs/default.py: 8-16-32-64, batch 32)
and the paper VGG (configs/paper.py: 32-64-128-256, batch 64), float32 on the
default backend:

1. checks on random [B, H, W, C] inputs (after a ReLU, so with ties, and
   without) that both pools give the same outputs and the same gradients;
2. trains each model `--loss_steps` steps on one random batch from the same
   initial state with each pool, and prints the largest difference of the
   losses and of the parameters after those steps;
3. times the jitted train step (`train.train_step`, as `gtzan_jax.benchmark`
   does) and the eval forward pass of each (model, pool), `--small_steps` or
   `--paper_steps` calls per timer, all timers interleaved for `--rounds`
   rounds; prints every round, then per (model, pass) each pool's best
   examples/s of wall time, the ratio of the bests, and the ratio of each
   round in wall time and in this process's CPU time.

The load average is printed before and after every round: on a shared machine
compare the ratios, and the spread between rounds, rather than the rates.
CPU time (all of the process's threads) moves less with other processes'
load than wall time does, though not at all with their use of the caches.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gtzan_jax  # noqa: E402  (sets the XLA:CPU flags before jax starts)
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from configs import default, paper  # noqa: E402
from gtzan_jax import benchmark, models, xla_cpu_kernels  # noqa: E402

POOLS = {
    'max_pool_2x2': xla_cpu_kernels.max_pool_2x2,
    'nn.max_pool': functools.partial(nn.max_pool, window_shape=(2, 2), strides=(2, 2)),
}
MODELS = {'small VGG 8-16-32-64': (default.get_config, 'small_steps'),
          'paper VGG 32-64-128-256': (paper.get_config, 'paper_steps')}


def cpu_model() -> str:
  try:
    out = subprocess.run(['lscpu'], capture_output=True, text=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return platform.processor()
  return next((line.split(':', 1)[1].strip() for line in out.splitlines() if line.startswith('Model name')),
              platform.processor())


def load() -> str:
  return '/'.join(f'{x:.2f}' for x in os.getloadavg())


def check_pools_agree() -> None:
  """Same outputs and gradients on random inputs (odd edges, ReLU ties and no ties)."""
  ours, ref = POOLS['max_pool_2x2'], POOLS['nn.max_pool']
  for name, x in [('relu(normal)', jax.nn.relu(jax.random.normal(jax.random.PRNGKey(0), (4, 17, 23, 8)))),
                  ('normal', jax.random.normal(jax.random.PRNGKey(1), (4, 16, 22, 8)))]:
    y, vjp = jax.vjp(jax.jit(ours), x)
    y_ref, vjp_ref = jax.vjp(jax.jit(ref), x)
    g = jax.random.normal(jax.random.PRNGKey(2), y.shape)
    dx, dx_ref = vjp(g)[0], vjp_ref(g)[0]
    print(f'pools on {name} {x.shape}: max |forward diff| {float(jnp.max(jnp.abs(y - y_ref))):.3g}, '
          f'max |gradient diff| {float(jnp.max(jnp.abs(dx - dx_ref))):.3g}, '
          f'gradients bitwise equal: {bool(jnp.array_equal(dx, dx_ref))}', flush=True)


def rate_timer(run, examples: int):
  """A timer returning examples per second of wall time and of this process's CPU time."""
  def timer() -> tuple[float, float]:
    start, cpu_start = time.perf_counter(), time.process_time()
    jax.block_until_ready(run())
    return examples / (time.perf_counter() - start), examples / (time.process_time() - cpu_start)
  return timer


def model_timers(config, pool, steps: int, loss_steps: int):
  """(train timer, eval timer, losses of the first loss_steps steps, parameters after them)."""
  model = models.create_model(config).clone(pool=pool)
  state = benchmark.create_state(config, model)
  batch = jax.device_put(benchmark.random_split(config.batch_size))
  start = time.perf_counter()
  step = jax.jit(benchmark.train_step, donate_argnums=0).lower(state, batch).compile()
  print(f'  compiled in {time.perf_counter() - start:.1f} s', flush=True)
  losses = []
  for _ in range(loss_steps):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  params = jax.tree.map(np.asarray, state.params)
  eval_fn = jax.jit(lambda s, mel: jnp.argmax(s.apply_fn(
      {'params': s.params, 'batch_stats': s.batch_stats}, mel, train=False), -1))
  jax.block_until_ready(eval_fn(state, batch['mel']))

  def train():
    nonlocal state
    for _ in range(steps):
      state, metrics = step(state, batch)
    return metrics

  def evaluate():
    return [eval_fn(state, batch['mel']) for _ in range(steps)][-1]

  examples = steps * config.batch_size
  return rate_timer(train, examples), rate_timer(evaluate, examples), losses, params


def ratios(ours, ref) -> str:
  return ', '.join(f'{a / b:.2f}' for a, b in zip(ours, ref))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--small_steps', type=int, default=10, help='calls per small-VGG timer per round')
  parser.add_argument('--paper_steps', type=int, default=2, help='calls per paper-VGG timer per round')
  parser.add_argument('--rounds', type=int, default=4)
  parser.add_argument('--loss_steps', type=int, default=3)
  args = parser.parse_args()
  print(f'{cpu_model()}, {os.cpu_count()} CPUs, {jax.devices()[0].device_kind}; jax {jax.__version__}, '
        f'XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}; load average {load()}', flush=True)
  check_pools_agree()

  timers = {}
  for model_name, (get_config, steps) in MODELS.items():
    config = get_config()
    params = {}
    losses = {}
    for pool_name, pool in POOLS.items():
      print(f'{model_name}, batch {config.batch_size}, pool {pool_name}:', flush=True)
      train, evaluate, losses[pool_name], params[pool_name] = model_timers(
          config, pool, getattr(args, steps), args.loss_steps)
      timers[(model_name, 'train', pool_name)] = train
      timers[(model_name, 'eval', pool_name)] = evaluate
      print(f'  losses of {args.loss_steps} steps on one batch: {losses[pool_name]}', flush=True)
    loss_diff = max(abs(a - b) for a, b in zip(*losses.values()))
    param_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(*map(jax.tree.leaves, params.values())))
    print(f'{model_name}: max |loss diff| between the pools {loss_diff:.3g}, '
          f'max |parameter diff| after {args.loss_steps} steps {param_diff:.3g}', flush=True)

  rates = {key: [] for key in timers}
  for r in range(args.rounds):
    print(f'round {r + 1}/{args.rounds}, load average before {load()}', flush=True)
    for key, timer in timers.items():
      rates[key].append(timer())
      print(f'  {" / ".join(key)}: {rates[key][-1][0]:.1f} examples/s, '
            f'{rates[key][-1][1]:.1f} per CPU-second', flush=True)
  print(f'load average after {load()}')

  print(f'\n{args.rounds} rounds, {args.small_steps} (small VGG) or {args.paper_steps} (paper VGG) calls per '
        'timer. Best examples/s of wall time, the ratio max_pool_2x2 / nn.max_pool of the bests, and the '
        'ratios of each round (the two timers ran next to each other), of wall time and of CPU time '
        '(all of this process\'s threads):')
  print('| model | pass | max_pool_2x2 ex/s | nn.max_pool ex/s | ratio of bests | ratio per round, wall '
        '| ratio per round, CPU time |\n|---|---|---|---|---|---|---|')
  for model_name in MODELS:
    for what in ('train', 'eval'):
      (wall, cpu), (wall_ref, cpu_ref) = (zip(*rates[(model_name, what, pool)]) for pool in POOLS)
      print(f'| {model_name} | {what} | {max(wall):.1f} | {max(wall_ref):.1f} '
            f'| {max(wall) / max(wall_ref):.2f} | {ratios(wall, wall_ref)} | {ratios(cpu, cpu_ref)} |')


if __name__ == '__main__':
  main()
