"""A/B of tagging's forward pass on a CPU: the few-channel kernels and XLA's inference flags.

  python scripts/row_forward_ab.py [--config=configs/default.py] [--rounds=5] [--out=ab.json]

`tagging.Forward` computes one row (segment) at a time, where XLA:CPU's convolutions on few
channels are slowest. Two changes speed it up, and this script measures each against the
stock path on the config's model (initial weights, random log-mels, batches of 64 over one
XLA CPU device per core, as predict runs them):

  flags     training's XLA flags (xla_cpu_flags.CPU_XLA_FLAGS) or the inference flags that
            predict sets (xla_cpu_flags.INFERENCE_XLA_FLAG: YNNPACK takes convolutions too);
            XLA reads them once per process, so each flag set runs in a child process
  kernels   xla_cpu_kernels' single-row kernels off ('stock'), the paired columns only
            ('paired'), or as predict runs them ('strided': under the inference flags the
            strided columns that YNNPACK takes, under training's the paired columns); each
            compiled apart, timed interleaved in one process

Prints segments/s and core-milliseconds a segment, best of --rounds, and the largest
difference of any log-probability from the stock path's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 64
KERNELS = ('stock', 'paired', 'strided')


def child(config_path: str, rounds: int) -> dict[str, dict[str, float]]:
  """Times the kernel variants in this process (its XLA_FLAGS as set by the parent)."""
  sys.path.insert(0, REPO)
  import importlib.util  # pylint: disable=g-import-not-at-top
  import gtzan_jax  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import  (XLA flags first)
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gtzan_jax import predict_bench, tagging, xla_cpu_kernels  # pylint: disable=g-import-not-at-top

  spec = importlib.util.spec_from_file_location('config', config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()

  trained = predict_bench.initial_model(config)
  mel = np.random.default_rng(0).normal(-40, 10, (BATCH, 128, 173)).astype(np.float16)
  settings = {'stock': (False, False), 'paired': (True, False), 'strided': (True, True)}
  forwards, outputs = {}, {}
  for name in KERNELS:  # the kernels are chosen when the function is traced: on its first call
    xla_cpu_kernels.PAIR_COLUMNS, xla_cpu_kernels.STRIDED_COLUMNS = settings[name]
    forwards[name] = tagging.Forward(trained, BATCH, per_row=True)
    outputs[name] = forwards[name](mel)
  xla_cpu_kernels.PAIR_COLUMNS, xla_cpu_kernels.STRIDED_COLUMNS = settings['strided']
  best = {name: float('inf') for name in KERNELS}
  for _ in range(rounds):
    for name, forward in forwards.items():
      forward(mel)
      start = time.perf_counter()
      for _ in range(4):
        forward(mel)
      best[name] = min(best[name], (time.perf_counter() - start) / (4 * BATCH))
  cores = os.cpu_count() or 1
  return {name: {'segments_per_s': 1 / best[name], 'core_ms_per_segment': 1e3 * cores * best[name],
                 'max_abs_diff_vs_stock': float(np.max(np.abs(outputs[name] - outputs['stock'])))}
          for name in KERNELS}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default=os.path.join(REPO, 'configs', 'default.py'))
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--out', default='')
  parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(child(args.config, args.rounds)))
    return
  sys.path.insert(0, REPO)
  from gtzan_jax import xla_cpu_flags  # pylint: disable=g-import-not-at-top  (imports no JAX)
  cores = os.cpu_count() or 1
  results = {}
  for flags, ynn in (('training', xla_cpu_flags.CPU_XLA_FLAGS[0]), ('inference', xla_cpu_flags.INFERENCE_XLA_FLAG)):
    env = {**os.environ, 'XLA_FLAGS': f'{ynn} --xla_force_host_platform_device_count={cores}'}
    run = subprocess.run([sys.executable, __file__, '--child', f'--config={args.config}', f'--rounds={args.rounds}'],
                         env=env, capture_output=True, text=True, check=False)
    if run.returncode:
      raise SystemExit(f'error: the {flags}-flags child failed:\n{run.stderr[-3000:]}')
    results[flags] = json.loads(run.stdout.strip().splitlines()[-1])
  stock = results['training']['stock']['segments_per_s']
  print(f'{cores} cores, {os.uname().machine}; rows one at a time in batches of {BATCH}, best of {args.rounds}')
  print('| XLA flags | kernels | segments/s | core-ms a segment | vs training flags, stock | max |diff| |')
  print('|---|---|---|---|---|---|')
  for flags, section in results.items():
    for name, r in section.items():
      print(f"| {flags} | {name} | {r['segments_per_s']:.0f} | {r['core_ms_per_segment']:.2f} | "
            f"{r['segments_per_s'] / stock:.2f}x | {r['max_abs_diff_vs_stock']:.1e} |")
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(results, f, indent=2)


if __name__ == '__main__':
  main()
