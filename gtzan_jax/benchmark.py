"""Training and evaluation speed on random data, with the same VGG in PyTorch beside it.

  python -m gtzan_jax.benchmark                      # what the trainer does here, in a few minutes
  python -m gtzan_jax.benchmark --config=configs/paper.py --out=bench.json \
      --batch_sizes=64,256 --dtype=float32,bfloat16 --steps=10

One process measures, for every (dtype, batch size): steady-state train
examples/s (compilation timed apart), FLOPs per step from XLA's cost analysis
of the lowered step and MFU where the chip's peak is known, and eval examples/s. Then, for the
first of each: one epoch trained device-resident (`make_device_epoch_fn`) and
streamed from the host, checking that both give the same losses (--epoch); on CPU the
PyTorch twin (`torch_peer`, --peer); the log-mel features (--mel); peak host and device
memory; optionally the dataset build (--build), the paper recipe (--recipe_examples) and
tagging folders of audio files beside today's one-file predict path (--predict, --predict_only:
`gtzan_jax/predict_bench.py`).
Timers run interleaved and each keeps its best of --rounds, so that a shared machine's
swings of load hit all of them alike. It prints a markdown table and writes
JSON (--out).

The defaults time what the trainer does on the platform at hand (`resolve_defaults`):
configs/default.py (the recommended recipe) at its own batch size; on an accelerator
also the device-resident epoch and jax_mel, which the trainer and builder never use
on CPU (`device_resident=auto` streams there: XLA:CPU runs the scanned epoch ~17x
slower), so a CPU skips them unless --epoch or --mel asks; on CPU the PyTorch twin
when torch (the `bench` extra) is installed, with a note when it is not. So
`python -m gtzan_jax.benchmark` finishes in a few minutes on 2 cores.

It times the trainer's own code: `train.create_train_state`, `train.train_step`
and `DataParallel.compile_epoch` on one device. It needs no dataset and
imports neither tensorflow_datasets nor librosa unless --build asks for them,
so it runs on an accelerator image that has only JAX.
"""

from __future__ import annotations

import collections
import contextlib
import concurrent.futures
import datetime
import functools
import glob
import gzip
import importlib.util
import json
import os
import platform
import resource
import sys
import time
from typing import Any, Callable, Iterable, Iterator, Mapping

from absl import app
from absl import flags
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxlib
import ml_collections
from ml_collections import config_flags
import numpy as np
import optax

import gtzan_jax
from gtzan_jax import input_pipeline
from gtzan_jax import models
from gtzan_jax import tables
from gtzan_jax import train
from gtzan_jax.parallel import DataParallel

N_MELS, N_FRAMES = 128, 173
# Dense peak FLOP/s by device kind: H100 SXM and H200, bf16 and TF32 (XLA's float32 default).
PEAK_FLOPS = {'NVIDIA H100 80GB HBM3': {'bfloat16': 989e12, 'float32': 494e12},
              'NVIDIA H200': {'bfloat16': 989e12, 'float32': 494e12}}


class AutoBoolParser(flags.BooleanParser):
  """A boolean flag's values plus 'auto', parsed as None: `resolve_defaults` decides per platform."""

  def parse(self, argument):
    if argument is None or (isinstance(argument, str) and argument.lower() == 'auto'):
      return None
    return super().parse(argument)

  def flag_type(self) -> str:
    return 'bool or auto'


def define_auto_bool(name: str, help_string: str, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """A flag that defaults to 'auto' and takes --name, --noname and --name=true|false|auto."""
  flags.DEFINE_flag(flags.Flag(AutoBoolParser(), None, name, 'auto', help_string, boolean=True),
                    flag_values)


FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', 'configs/default.py', 'Model and optimizer config.')
flags.DEFINE_string('out', None, 'Write the results here as JSON.')
flags.DEFINE_integer('steps', 10, 'Timed steps per measurement.')
flags.DEFINE_integer('rounds', 3, 'Interleaved repeats of every timer; the best counts.')
flags.DEFINE_list('batch_sizes', None, "Batch sizes (per step, on one device); default: the config's batch_size.")
flags.DEFINE_list('dtype', ['float32'], 'Activation dtypes: float32, bfloat16.')
flags.DEFINE_integer('epoch_steps', 0, 'Steps of the device-resident/streaming epoch (0: --steps).')
define_auto_bool('peer', 'On CPU, also time the PyTorch VGG (needs torch, the bench extra); auto: on CPU '
                 'when torch is installed.')
flags.DEFINE_boolean('tune_cpu', True, f'Keep the {" ".join(gtzan_jax.CPU_XLA_FLAGS)} that importing gtzan_jax '
                     'adds to XLA_FLAGS (XLA:CPU only); --notune_cpu times XLA:CPU with its defaults.')
flags.DEFINE_integer('recipe_examples', 0, 'Time the paper recipe, device-resident, on this many examples.')
flags.DEFINE_integer('recipe_epochs', 50, 'Epochs of the paper recipe.')
flags.DEFINE_boolean('build', False, 'Time the dataset build (needs tensorflow_datasets and librosa).')
flags.DEFINE_string('profile_dir', None, 'Trace --steps steps of the first run with jax.profiler here and '
                    'report the ops that take the most time.')
define_auto_bool('epoch', 'Time a device-resident against a streamed epoch; auto: on accelerators only '
                 '(the trainer streams on CPU, where XLA runs the resident epoch ~17x slower).')
flags.DEFINE_boolean('interleave', True, 'Interleave the timers of all batch sizes (else time each after '
                     'its compilation, saving as it goes).')
define_auto_bool('mel', 'Time the log-mel features: jax_mel on the device; melspec and librosa on one host '
                 'thread. auto: on accelerators only (on CPU neither trainer nor builder uses jax_mel).')
flags.DEFINE_integer('build_clips', 1000, 'With --build and no --build_dir: synthetic 30 s clips to write '
                     'as WAV files (untimed) and build from (1000: full GTZAN size).')
flags.DEFINE_string('build_dir', None, 'With --build: time the build from this GTZAN folder instead.')
flags.DEFINE_integer('build_copies', 0, 'With --build: also time the build of the same clips with K audio-'
                     'augmented copies of each training clip (configs/default.py: 1), from scratch.')
flags.DEFINE_boolean('predict', False, 'Also time tagging folders of audio files (gtzan_jax/predict_bench.py): '
                     'files/s and segments/s on --predict_clips 30 s clips and --predict_long_files 3-minute '
                     "songs, beside today's one-file-at-a-time predict_file, under 'predict' in --out.")
flags.DEFINE_boolean('predict_only', False, 'With --predict: time only that, none of the training timers.')
flags.DEFINE_integer('predict_clips', 100, 'With --predict: synthetic 30 s clips to tag (written untimed).')
flags.DEFINE_integer('predict_long_files', 8, 'With --predict: synthetic 3-minute songs to tag (written untimed).')
flags.DEFINE_list('predict_pools', ['process', 'thread'], 'With --predict: the worker pools to time (A/B).')
flags.DEFINE_string('predict_before', None, 'With --predict: a checkout of the code as it was before the library '
                    'path (git worktree add DIR 9afff77~1), whose one-file path scripts/todays_path.py then times '
                    'on the same clips in every round, in a child process with its own XLA flags.')
flags.DEFINE_integer('predict_workers', 0, 'With --predict: decoding workers (0: the CPU count).')
flags.DEFINE_integer('predict_batch_size', 0, 'With --predict: segments per forward pass (0: predict\'s default).')
flags.DEFINE_boolean('stream', False, 'Time only training from a split streamed from disk beside the same split in '
                     'memory (gtzan_jax/stream_bench.py): examples/s and peak RSS, under \'stream\' in --out.')
flags.DEFINE_integer('stream_clips', 20000, 'With --stream: synthetic clips in the collection (written once).')
flags.DEFINE_float('stream_seconds', 6.0, 'With --stream: seconds per clip (6 s: 3 segments).')
flags.DEFINE_string('stream_dir', 'bench/stream', 'With --stream: where the collection, its dataset and the runs go.')

Batch = dict[str, jax.Array]
StepFn = Callable[[Any, Batch], tuple[Any, dict[str, jax.Array]]]


def torch_available() -> bool:
  """Whether torch can be imported (it is in the `bench` extra only), without importing it."""
  return importlib.util.find_spec('torch') is not None


def resolve_defaults(values: Mapping[str, Any], device_platform: str) -> dict[str, Any]:
  """`values` (flag name -> value; None for 'auto' or unset) with the defaults for `device_platform` filled in.

  Reads 'config', 'batch_sizes', 'epoch', 'mel' and 'peer'; the rest is passed through.
  On an accelerator ('gpu', 'tpu') --epoch and --mel default to on; on 'cpu' to off,
  since the trainer never keeps the epoch on the device there and never uses jax_mel.
  --peer (the PyTorch twin, timed on CPU only) defaults to on CPU when torch is
  installed, with a printed note when it is not. Batch sizes default to the config's.

  Raises:
    ValueError: --peer asked for on CPU without torch, or a batch size that is not an int > 0.
  """
  resolved = dict(values)
  accelerator = device_platform != 'cpu'
  for name in ('epoch', 'mel'):
    if resolved.get(name) is None:
      resolved[name] = accelerator
  if resolved.get('peer') is None:
    resolved['peer'] = not accelerator and torch_available()
    if not accelerator and not resolved['peer']:
      print('note: torch is not installed (pip install -e ".[bench]"), so the PyTorch VGG is not timed.',
            flush=True)
  elif resolved['peer'] and not accelerator and not torch_available():
    raise ValueError('--peer times the PyTorch VGG, which needs torch: pip install -e ".[bench]", or --nopeer.')
  batch_sizes = resolved.get('batch_sizes') or [resolved['config'].batch_size]
  try:
    resolved['batch_sizes'] = [int(b) for b in batch_sizes]
  except ValueError:
    resolved['batch_sizes'] = []
  if not resolved['batch_sizes'] or min(resolved['batch_sizes']) < 1:
    raise ValueError(f'--batch_sizes must be ints > 0, got {",".join(map(str, batch_sizes))}.')
  return resolved


def create_state(config: ml_collections.ConfigDict, model: nn.Module) -> train.TrainState:
  """The trainer's state for `model` from `config.seed` (constant learning rate schedule).

  A transfer model's network keeps its random initial weights: the same arithmetic as musicnn's.
  """
  return train.create_train_state(jax.random.PRNGKey(config.seed), config, model, steps_per_epoch=100,
                                  pretrained=False)


train_step = functools.partial(train.train_step, axis_name=None)


def make_device_epoch_fn(step: StepFn) -> Callable:
  """The trainer's device-resident epoch (`DataParallel.compile_epoch`) on one device.

  Returns `epoch_fn(state, data, order) -> (state, metrics)` (jitted) with
  `data` the whole split on the device and `order` the epoch's example indices
  as [steps, batch_size].
  """
  return DataParallel('jit', jax.devices()[:1]).compile_epoch(step)


def prefetch_to_device(batches: Iterable[dict[str, np.ndarray]], size: int = 2) -> Iterator[Batch]:
  """Places each batch on the default device `size` batches ahead of its use."""
  queue = collections.deque()
  for batch in batches:
    queue.append(jax.device_put(batch))
    if len(queue) > size:
      yield queue.popleft()
  yield from queue


def stream_epoch(step: StepFn, state: Any, data: dict[str, np.ndarray], order: np.ndarray,
                 batch_size: int) -> tuple[Any, dict[str, jax.Array]]:
  """The epoch of `make_device_epoch_fn` fed from host memory, one jitted step per batch."""
  batches = ({k: v[indices] for k, v in data.items()} for indices in order.reshape(-1, batch_size))
  metrics = []
  for batch in prefetch_to_device(batches):
    state, m = step(state, batch)
    metrics.append(m)
  return state, jax.tree.map(lambda *m: jnp.stack(m), *metrics)


def _widths(config: ml_collections.ConfigDict) -> list[int] | None:
  """The VGG widths of `config` (None for a model without them, e.g. 'musicnn')."""
  vgg = config.get('vgg') or {}
  return list(vgg['widths']) if config.model == 'vgg' and 'widths' in vgg else None


def random_split(num_examples: int, seed: int = 0, shape: tuple[int, int] = (N_MELS, N_FRAMES)
                 ) -> dict[str, np.ndarray]:
  """Log-mel-like float16 inputs (`shape`: of a config's features) and labels, as `read_split` gives them."""
  rng = np.random.default_rng(seed)
  return {'mel': rng.normal(-40.0, 10.0, (num_examples, *shape)).astype(np.float16),
          'label': rng.integers(0, models.NUM_CLASSES, num_examples).astype(np.int32)}


def _flops(lowered) -> float | None:
  """The step's FLOPs, counted on the lowered (unoptimised, platform-independent) HLO.

  Not the compiled executable's count: on GPUs that leaves out the convolutions,
  which XLA hands to cuDNN as custom calls (an H200 reported 4.5 of the 416
  GFLOP of the paper VGG's step at batch 64).
  """
  analysis = lowered.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return (analysis or {}).get('flops')


def _rate_timer(run: Callable[[], Any], examples: int) -> Callable[[], float]:
  def timer() -> float:
    start = time.perf_counter()
    jax.block_until_ready(run())
    return examples / (time.perf_counter() - start)
  return timer


def best_rates(timers: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
  """Calls every timer `rounds` times, interleaved, and keeps each one's best examples/s."""
  best = dict.fromkeys(timers, 0.0)
  for r in range(rounds):
    for name, timer in timers.items():
      rate = timer()
      best[name] = max(best[name], rate)
      print(f'round {r + 1}/{rounds} {name}: {rate:.1f} examples/s', flush=True)  # progress, if cut off
  return best


def train_timer(config: ml_collections.ConfigDict, batch_size: int,
                steps: int) -> tuple[Callable[[], float], dict[str, Any]]:
  """A timer of `steps` jitted train steps on one random batch, and the compile facts."""
  state = create_state(config, models.create_model(config))
  batch = jax.device_put(random_split(batch_size, shape=input_pipeline.input_shape(config)))
  start = time.perf_counter()
  lowered = jax.jit(train_step, donate_argnums=0).lower(state, batch)
  compiled = lowered.compile()
  info = {'compile_s': time.perf_counter() - start, 'step_flops': _flops(lowered),
          'num_params': sum(x.size for x in jax.tree.leaves(state.params))}
  print(f"compiled {config.dtype} batch {batch_size} in {info['compile_s']:.1f} s, "
        f"{(info['step_flops'] or 0) / 1e9:.1f} GFLOP/step", flush=True)
  state, _ = compiled(state, batch)  # warm-up
  eval_fn = jax.jit(lambda s, mel: jnp.argmax(s.apply_fn(
      {'params': s.params, 'batch_stats': s.batch_stats}, mel, train=False), -1))
  jax.block_until_ready(eval_fn(state, batch['mel']))
  info['eval_timer'] = _rate_timer(lambda: [eval_fn(state, batch['mel']) for _ in range(steps)][-1],
                                   steps * batch_size)

  def run():
    nonlocal state
    for _ in range(steps):
      state, metrics = compiled(state, batch)
    return metrics

  info['run'] = run
  return _rate_timer(run, steps * batch_size), info


def profile_ops(run: Callable[[], Any], steps: int, log_dir: str, top: int = 15) -> list[dict[str, Any]]:
  """Traces `run` (`steps` train steps) with jax.profiler into `log_dir`; returns the `top` ops by time.

  Reads the Perfetto trace: on an accelerator the device's kernels (every process not named
  /host...), on a CPU the host's XLA ops. Each entry: name, where, ms per step, share of the total.
  """
  with jax.profiler.trace(log_dir, create_perfetto_trace=True):
    jax.block_until_ready(run())
  paths = sorted(glob.glob(os.path.join(log_dir, '**', '*perfetto_trace.json.gz'), recursive=True),
                 key=os.path.getmtime)
  with gzip.open(paths[-1]) as f:
    trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  where = {e['pid']: e['args']['name'] for e in events if e.get('ph') == 'M' and e.get('name') == 'process_name'}
  device = {pid for pid, name in where.items() if not name.startswith('/host')}
  totals = collections.Counter()
  for e in events:
    name = e.get('name', '')
    if e.get('ph') != 'X' or (device and e['pid'] not in device):
      continue
    if not device and (name.startswith('$') or 'ThunkExecutor' in name or 'PjitFunction' in name):
      continue  # on a CPU: Python frames and the executor's wrappers around the ops
    totals[(where.get(e['pid'], '?'), name)] += e.get('dur', 0.0)  # microseconds
  total = sum(totals.values()) or 1.0
  return [{'name': name, 'where': place, 'ms_per_step': us / 1e3 / steps, 'share': us / total}
          for (place, name), us in totals.most_common(top)]


def epoch_comparison(config: ml_collections.ConfigDict, batch_size: int, steps: int,
                     rounds: int) -> dict[str, Any]:
  """One epoch of `steps` batches, device-resident vs streamed: examples/s and whether losses agree."""
  data = random_split(steps * batch_size, seed=1, shape=input_pipeline.input_shape(config))
  order = np.random.default_rng((config.seed, 0)).permutation(len(data['label'])).astype(np.int32)
  model = models.create_model(config)
  device_data, device_order = jax.device_put(data), jax.device_put(order.reshape(steps, batch_size))
  epoch_fn = make_device_epoch_fn(train_step)
  step = jax.jit(train_step, donate_argnums=0)
  states = {'resident': create_state(config, model), 'streamed': create_state(config, model)}
  start = time.perf_counter()
  epoch_fn = epoch_fn.lower(states['resident'], device_data, device_order).compile()
  compile_s = time.perf_counter() - start
  states['resident'], resident = epoch_fn(states['resident'], device_data, device_order)
  states['streamed'], streamed = stream_epoch(step, states['streamed'], data, order, batch_size)

  def resident_epoch():
    states['resident'], metrics = epoch_fn(states['resident'], device_data, device_order)
    return metrics

  def streamed_epoch():
    states['streamed'], metrics = stream_epoch(step, states['streamed'], data, order, batch_size)
    return metrics

  rates = best_rates({'device_resident': _rate_timer(resident_epoch, steps * batch_size),
                      'streaming': _rate_timer(streamed_epoch, steps * batch_size)}, rounds)
  return {'examples': steps * batch_size, 'batch_size': batch_size, 'compile_s': compile_s,
          'device_resident_examples_per_s': rates['device_resident'],
          'streaming_examples_per_s': rates['streaming'],
          'losses_identical': bool(np.array_equal(resident['loss'], streamed['loss'])),
          'max_loss_difference': float(np.max(np.abs(np.asarray(resident['loss']) - np.asarray(streamed['loss']))))}


def paper_recipe(config: ml_collections.ConfigDict, num_examples: int,
                 epochs: int) -> dict[str, Any]:
  """`epochs` device-resident epochs over `num_examples` random examples at config.batch_size."""
  data = jax.device_put(random_split(num_examples, seed=2, shape=input_pipeline.input_shape(config)))
  steps = num_examples // config.batch_size
  state = create_state(config, models.create_model(config))
  orders = [np.random.default_rng((config.seed, e)).permutation(num_examples)[:steps * config.batch_size]
            .astype(np.int32).reshape(steps, config.batch_size) for e in range(epochs)]
  start = time.perf_counter()
  epoch_fn = make_device_epoch_fn(train_step).lower(state, data, orders[0]).compile()
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for order in orders:
    state, metrics = epoch_fn(state, data, order)
  final_loss = float(metrics['loss'][-1])
  seconds = time.perf_counter() - start
  return {'examples': num_examples, 'epochs': epochs, 'batch_size': config.batch_size, 'dtype': config.dtype,
          'seconds': seconds, 'compile_s': compile_s,
          'examples_per_s': epochs * steps * config.batch_size / seconds, 'final_loss': final_loss}


def build_segments_per_s(num_clips: int, manual_dir: str | None = None,
                         copies: int = 0) -> dict[str, Any]:
  """Times the whole `gtzan_mel/tracks` build (decode, log-mel, write ArrayRecord) from audio files.

  Reads GTZAN-layout files from `manual_dir`; without one, first writes `num_clips` synthetic
  30 s clips (tfds_gtzan.synthetic, 16-bit WAV as GTZAN's, spread over the genres) into a
  temporary folder, untimed, as the issue's full-GTZAN-sized measurement asks. The files are
  read once before timing, so the figure is for a warm page cache. With `copies` = K > 0 it
  then times, from scratch, the build of the same clips plus K augmented copies of each training
  clip (`augmented_config`, the default augmentation parameters), under 'augmented'.
  """
  import tempfile  # pylint: disable=g-import-not-at-top
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from tfds_gtzan import data, synthetic  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    if manual_dir is None:
      manual_dir = os.path.join(tmp, 'audio')
      def write(i: int) -> None:
        genre, index = i % len(synthetic.GENRES), i // len(synthetic.GENRES)
        folder = os.path.join(manual_dir, 'genres', synthetic.GENRES[genre])
        os.makedirs(folder, exist_ok=True)
        sf.write(os.path.join(folder, f'{synthetic.track_name(genre, index)}.wav'),
                 synthetic.generate_clip(genre, index), synthetic.SAMPLE_RATE, subtype='PCM_16')
      with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write, range(num_clips)))
    files = glob.glob(os.path.join(manual_dir, '**', '*.*'), recursive=True)
    for path in files:  # warm the page cache
      with open(path, 'rb') as f:
        while f.read(1 << 24):
          pass
    start = time.perf_counter()
    builder = data.get_builder('gtzan_mel/tracks', os.path.join(tmp, 'tfds'), manual_dir)
    seconds = time.perf_counter() - start
    segments = sum(builder.info.metadata['summary']['segments'].values())
    augmented = None
    if copies:
      from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder  # pylint: disable=g-import-not-at-top
      name = 'gtzan_mel/' + gtzan_mel_dataset_builder.augmented_config('tracks', copies=copies).name
      start = time.perf_counter()
      summary = data.get_builder(name, os.path.join(tmp, 'tfds'), manual_dir).info.metadata['summary']
      augmented = {'copies': copies, 'seconds': time.perf_counter() - start,
                   'segments': sum(summary['segments'].values()),
                   'augmented_segments': summary['augmented_segments']}
      augmented['segments_per_s'] = augmented['segments'] / augmented['seconds']
  return {'clips': builder.info.metadata['summary']['clips_read'], 'segments': segments,
          'seconds': seconds, 'segments_per_s': segments / seconds, 'cpu_count': os.cpu_count(),
          'augmented': augmented}


def mel_segments_per_s(rounds: int, batch: int = 256) -> dict[str, Any]:
  """Log-mel features of random 2 s segments per second, all of the dataset's definition.

  `jax_mel` on the default device (and fed from the host); on one host thread, `melspec`
  (numpy + scipy.fft, what the dataset builder uses) and, where librosa is installed,
  librosa itself (melspectrogram + power_to_db per segment: the reference it replaces).
  """
  from tfds_gtzan import jax_mel, melspec  # pylint: disable=g-import-not-at-top
  try:
    from threadpoolctl import threadpool_limits  # pylint: disable=g-import-not-at-top
  except ImportError:  # an accelerator image without it: BLAS keeps its threads
    threadpool_limits = lambda limits: contextlib.nullcontext()  # pylint: disable=unnecessary-lambda-assignment
  y = np.random.default_rng(3).uniform(-0.5, 0.5, (batch, jax_mel.SEGMENT_SAMPLES)).astype(np.float32)
  on_device = jax.device_put(y)
  jax.block_until_ready(jax_mel.log_mel(on_device))  # compile

  def one_thread(fn: Callable[[np.ndarray], Any], n: int = 28) -> Callable[[], float]:
    def timer() -> float:
      with threadpool_limits(1):
        start = time.perf_counter()
        fn(y[:n])
        return n / (time.perf_counter() - start)
    return timer

  timers = {'jax_mel': _rate_timer(lambda: [jax_mel.log_mel(on_device) for _ in range(5)][-1], 5 * batch),
            'jax_mel_from_host': _rate_timer(lambda: jax_mel.log_mel(jax.device_put(y)), batch),
            'melspec_one_thread': one_thread(melspec.log_mel)}
  try:
    import librosa  # pylint: disable=g-import-not-at-top

    def librosa_log_mel(segments: np.ndarray) -> None:
      for segment in segments:
        librosa.power_to_db(librosa.feature.melspectrogram(
            y=segment, sr=melspec.SAMPLE_RATE, n_fft=melspec.N_FFT, hop_length=melspec.HOP_LENGTH,
            n_mels=melspec.N_MELS), ref=melspec.REF, amin=melspec.AMIN, top_db=melspec.TOP_DB)

    librosa_log_mel(y[:1])  # warm-up: librosa's first call builds its filter bank and caches
    timers['librosa_one_thread'] = one_thread(librosa_log_mel)
  except ImportError:
    pass
  rates = best_rates(timers, rounds)
  return {'batch': batch, **{f'{name}_segments_per_s': rate for name, rate in rates.items()}}


def cpu_model() -> str:
  """The host CPU's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
  names = {'jax': jax, 'flax': flax, 'optax': optax, 'numpy': np}
  found = {name: module.__version__ for name, module in names.items()}
  found['jaxlib'] = jaxlib.__version__
  if 'torch' in sys.modules:
    found['torch'] = sys.modules['torch'].__version__
  return {'python': platform.python_version(), **found}


def run(config: ml_collections.ConfigDict, *, batch_sizes: list[int], dtypes: list[str],
        steps: int, rounds: int = 3, epoch_steps: int = 0, peer: bool = False, recipe_examples: int = 0,
        recipe_epochs: int = 50, build_clips: int = 0, build_dir: str | None = None, build_copies: int = 0,
        mel: bool = False, epoch: bool = False, interleave: bool = True, profile_dir: str | None = None,
        save: Callable[[dict[str, Any]], None] = lambda results: None) -> dict[str, Any]:
  """Every measurement of this module; returns the JSON-ready results (also passed to `save` as they grow).

  Times only what is asked for: the command line's platform defaults are `resolve_defaults`'.
  """
  device = jax.devices()[0]
  timers, runs, runs_fns = {}, [], {}
  for dtype in dtypes:
    for batch_size in batch_sizes:
      cfg = config.copy_and_resolve_references()
      cfg.dtype = dtype
      key = f'{dtype}/{batch_size}'
      timers[key], info = train_timer(cfg, batch_size, steps)
      timers[key + '/eval'] = info.pop('eval_timer')
      runs_fns[key] = info.pop('run')
      runs.append({'key': key, 'dtype': dtype, 'batch_size': batch_size, **info})
      if not interleave:  # measure now, and keep it should a later (larger) compilation run out of time
        rates = best_rates({k: timers.pop(k) for k in (key, key + '/eval')}, rounds)
        runs[-1]['train_examples_per_s'], runs[-1]['eval_examples_per_s'] = rates[key], rates[key + '/eval']
        save({'partial': True, 'device_kind': device.device_kind, 'runs': runs})
  peer_info = None
  if peer and device.platform == 'cpu':
    import torch  # pylint: disable=g-import-not-at-top
    from gtzan_jax import torch_peer  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(os.cpu_count())
    timers['peer'], peer_params = torch_peer.make_train_timer(config.vgg.widths, batch_sizes[0], steps)
    peer_info = {'framework': f'torch {torch.__version__}', 'threads': torch.get_num_threads(),
                 'batch_size': batch_sizes[0], 'dtype': 'float32', 'num_params': peer_params}
  rates = best_rates(timers, rounds)
  peak = PEAK_FLOPS.get(device.device_kind, {})
  for r in runs:
    r['train_examples_per_s'] = rates.get(r['key'], r.get('train_examples_per_s'))
    r['eval_examples_per_s'] = rates.get(r['key'] + '/eval', r.get('eval_examples_per_s'))
    achieved = r['step_flops'] and r['step_flops'] * r['train_examples_per_s'] / r['batch_size']
    r['mfu'] = achieved / peak[r['dtype']] if achieved and r['dtype'] in peak else None
    if peer_info and r['batch_size'] == peer_info['batch_size']:
      r['ratio_vs_peer'] = r['train_examples_per_s'] / rates['peer']

  first = runs[0]
  cfg = config.copy_and_resolve_references()
  cfg.dtype = first['dtype']
  results = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'platform': device.platform, 'device_kind': device.device_kind, 'device_count': jax.device_count(),
      'cpu_count': os.cpu_count(), 'cpu_model': cpu_model(), 'load_average': os.getloadavg(),
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'versions': versions(), 'widths': _widths(config), 'steps': steps, 'rounds': rounds,
      'dtype': first['dtype'], 'batch_size': first['batch_size'],
      'train_examples_per_s': first['train_examples_per_s'], 'eval_examples_per_s': first['eval_examples_per_s'],
      'compile_s': first['compile_s'], 'mfu': first['mfu'], 'num_params': first['num_params'],
      'peak_flops': peak or None, 'runs': runs, 'epoch': None,
      'peer': peer_info and {**peer_info, 'train_examples_per_s': rates['peer']},
      'ratio_vs_peer': first.get('ratio_vs_peer'), 'recipe': None, 'build': None, 'mel': None, 'profile': None,
  }
  if profile_dir:
    results['profile'] = profile_ops(runs_fns[first['key']], steps, profile_dir)
    print('\n'.join(f"{p['ms_per_step']:8.3f} ms/step {100 * p['share']:5.1f} %  {p['name']}"
                     for p in results['profile']), flush=True)
  _memory(results, device)
  save(results)  # what is measured so far survives a timeout of what follows
  if epoch:
    results['epoch'] = epoch_comparison(cfg, first['batch_size'], epoch_steps or steps, rounds)
    save(results)
  if recipe_examples:
    results['recipe'] = paper_recipe(cfg, recipe_examples, recipe_epochs)
    save(results)
  if mel:
    results['mel'] = mel_segments_per_s(rounds)
    save(results)
  if build_clips or build_dir:
    results['build'] = build_segments_per_s(build_clips, build_dir, build_copies)
  _memory(results, device)
  return results


def _memory(results: dict[str, Any], device: jax.Device) -> None:
  stats = device.memory_stats() or {}
  results['peak_device_memory_mb'] = stats['peak_bytes_in_use'] / 2**20 if 'peak_bytes_in_use' in stats else None
  results['peak_host_memory_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def markdown(results: dict[str, Any]) -> str:
  """The results as markdown tables."""
  lines = [f"{results['device_kind']} ({results['platform']}), {results['date']}, load average "
           f"{results['load_average'][0]:.1f} on {results['cpu_count']} CPUs ({results.get('cpu_model')})", '']
  rows = [[r['dtype'], r['batch_size'], f"{r['train_examples_per_s']:.1f}", f"{r['eval_examples_per_s']:.1f}",
           f"{r['compile_s']:.1f}", f"{r['step_flops'] / 1e9:.1f}" if r['step_flops'] else '-',
           f"{100 * r['mfu']:.1f}%" if r['mfu'] is not None else '-',
           f"{r['ratio_vs_peer']:.2f}x" if 'ratio_vs_peer' in r else '-'] for r in results['runs']]
  if results['peer']:
    p = results['peer']
    rows.append([f"float32, PyTorch ({p['framework']}, {p['threads']} threads)", p['batch_size'],
                 f"{p['train_examples_per_s']:.1f}", '-', '-', '-', '-', '1.00x'])
  lines.append(tables.markdown_table(
      ['dtype', 'batch', 'train ex/s', 'eval ex/s', 'compile s', 'GFLOP/step', 'MFU', 'vs PyTorch'], rows).rstrip())
  e = results['epoch']
  lines += [''] if e is None else ['', f"Epoch of {e['examples']} examples at batch {e['batch_size']}: device-resident "
            f"{e['device_resident_examples_per_s']:.1f} ex/s, streaming {e['streaming_examples_per_s']:.1f} ex/s, "
            f"losses identical: {e['losses_identical']}."]
  if results['recipe']:
    r = results['recipe']
    lines.append(f"Paper recipe ({r['examples']} examples x {r['epochs']} epochs, batch {r['batch_size']}, "
                 f"{r['dtype']}, device-resident): {r['seconds']:.1f} s + {r['compile_s']:.1f} s compile "
                 f"({r['examples_per_s']:.0f} ex/s).")
  if results.get('mel'):
    lines.append('Log-mel features, segments/s: ' + ', '.join(
        f"{name.removesuffix('_segments_per_s')} {rate:.0f}" for name, rate in results['mel'].items()
        if name.endswith('_segments_per_s')) + '.')
  if results['build']:
    build = results['build']
    lines.append(f"Dataset build (gtzan_mel/tracks from {build['clips']} WAV clips, warm page cache, "
                 f"{build['cpu_count']} CPUs): {build['seconds']:.1f} s, {build['segments_per_s']:.0f} segments/s.")
    if build.get('augmented'):
      a = build['augmented']
      copies = f"{a['copies']} augmented cop{'y' if a['copies'] == 1 else 'ies'}"
      lines.append(f"The same with {copies} of each training clip, from scratch: "
                   f"{a['seconds']:.1f} s ({a['seconds'] - build['seconds']:+.1f} s) for {a['segments']} segments "
                   f"({a['augmented_segments']} augmented), {a['segments_per_s']:.0f} segments/s.")
  device_mb = results['peak_device_memory_mb']
  lines.append(f"Peak memory: host {results['peak_host_memory_mb']:.0f} MB, device "
               f"{'n/a' if device_mb is None else f'{device_mb:.0f} MB'}.")
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS.tune_cpu:  # JAX reads XLA_FLAGS when its backend starts
    os.environ['XLA_FLAGS'] = ' '.join(f for f in os.environ.get('XLA_FLAGS', '').split()
                                       if f not in gtzan_jax.CPU_XLA_FLAGS_ADDED)
  if FLAGS.predict and FLAGS.predict_only:  # as predict's command line, before JAX starts: one CPU device
    from gtzan_jax import tagging  # pylint: disable=g-import-not-at-top  per core, the inference flags
    tagging.set_inference_flags()
  def save(results: dict[str, Any]) -> None:
    if FLAGS.out:
      with open(FLAGS.out + '.tmp', 'w') as f:
        json.dump(results, f, indent=2)
      os.replace(FLAGS.out + '.tmp', FLAGS.out)

  platform_name = jax.devices()[0].platform
  try:
    chosen = resolve_defaults({'config': FLAGS.config, 'batch_sizes': FLAGS.batch_sizes, 'epoch': FLAGS.epoch,
                               'mel': FLAGS.mel, 'peer': FLAGS.peer}, platform_name)
  except ValueError as e:
    raise SystemExit(f'error: {e}') from None
  print(f"benchmark on {platform_name}: batch sizes {','.join(map(str, chosen['batch_sizes']))}; epoch "
        f"comparison {'on' if chosen['epoch'] else 'off'}, log-mel {'on' if chosen['mel'] else 'off'}"
        + (f", PyTorch twin {'on' if chosen['peer'] else 'off'}" if platform_name == 'cpu' else ''), flush=True)
  if FLAGS.predict and FLAGS.predict_only:
    return _predict_only(save)
  if FLAGS.stream:
    return _stream(save)
  results = run(FLAGS.config, batch_sizes=chosen['batch_sizes'], dtypes=FLAGS.dtype,
                steps=FLAGS.steps, rounds=FLAGS.rounds, epoch_steps=FLAGS.epoch_steps,
                peer=chosen['peer'], recipe_examples=FLAGS.recipe_examples, recipe_epochs=FLAGS.recipe_epochs,
                build_clips=FLAGS.build_clips if FLAGS.build else 0,
                build_dir=FLAGS.build_dir if FLAGS.build else None, build_copies=FLAGS.build_copies,
                mel=chosen['mel'], epoch=chosen['epoch'],
                interleave=FLAGS.interleave, profile_dir=FLAGS.profile_dir, save=save)
  print(markdown(results), flush=True)
  save(results)
  if FLAGS.predict:
    _predict(results, save)


def _predict(results: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> None:
  """--predict: `predict_bench.measure` into results['predict'], printed and saved."""
  from gtzan_jax import predict_bench  # pylint: disable=g-import-not-at-top  (librosa, soundfile)
  try:
    results['predict'] = predict_bench.measure(
        FLAGS.config, clips=FLAGS.predict_clips, long_files=FLAGS.predict_long_files, rounds=FLAGS.rounds,
        batch_size=FLAGS.predict_batch_size, workers=FLAGS.predict_workers, pools=tuple(FLAGS.predict_pools),
        before=FLAGS.predict_before)
  except ValueError as e:
    raise SystemExit(f'error: {e}') from None
  results['load_average_after_predict'] = os.getloadavg()
  print(predict_bench.markdown(results['predict']), flush=True)
  save(results)


def _stream(save: Callable[[dict[str, Any]], None]) -> None:
  """--stream: `stream_bench.measure` into results['stream'], printed and saved."""
  from gtzan_jax import stream_bench  # pylint: disable=g-import-not-at-top  (TFDS, librosa)
  device = jax.devices()[0]
  results = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
             'platform': device.platform, 'device_kind': device.device_kind, 'cpu_count': os.cpu_count(),
             'cpu_model': cpu_model(), 'load_average': os.getloadavg(), 'versions': versions(),
             'widths': _widths(FLAGS.config), 'batch_size': FLAGS.config.batch_size}
  print(f"benchmark on {device.platform} ({results['cpu_model']}, {os.cpu_count()} CPUs, load average "
        f"{results['load_average'][0]:.1f}): streaming only", flush=True)
  results['stream'] = stream_bench.measure(
      FLAGS['config'].config_filename, FLAGS.config, clips=FLAGS.stream_clips, seconds=FLAGS.stream_seconds,
      directory=FLAGS.stream_dir, rounds=FLAGS.rounds,
      overrides=tuple(f'--config.{k}={v}' for k, v in _config_overrides().items()))
  results['load_average_after'] = os.getloadavg()
  print(stream_bench.markdown(results['stream']), flush=True)
  save(results)


def _config_overrides() -> dict[str, str]:
  """The --config.KEY=VALUE flags given on the command line, to pass on to the training processes."""
  overrides = {}
  for arg in sys.argv[1:]:
    if arg.startswith('--config.') and '=' in arg:
      key, value = arg[len('--config.'):].split('=', 1)
      overrides[key] = value
  return overrides


def _predict_only(save: Callable[[dict[str, Any]], None]) -> None:
  device = jax.devices()[0]
  results = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
             'platform': device.platform, 'device_kind': device.device_kind, 'cpu_count': os.cpu_count(),
             'cpu_model': cpu_model(), 'load_average': os.getloadavg(), 'xla_flags': os.environ.get('XLA_FLAGS', ''),
             'versions': versions(), 'widths': _widths(FLAGS.config), 'rounds': FLAGS.rounds}
  print(f"benchmark on {device.platform} ({results['cpu_model']}, {os.cpu_count()} CPUs, load average "
        f"{results['load_average'][0]:.1f}): tagging only", flush=True)
  _predict(results, save)


if __name__ == '__main__':
  app.run(main)
