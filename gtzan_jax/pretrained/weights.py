"""musicnn's pretrained weights as numpy arrays: from the PyPI wheel, sha256-checked, no TensorFlow.

Why: the only pretrained music networks that reach us through a package registry are
musicnn's (Jordi Pons, Music Technology Group, UPF; ISC licence). `musicnn==0.1.0`'s
wheel (29 MB) holds four TF1 checkpoints, tagging networks for the top-50 tags of

  MSD_musicnn, MSD_vgg   the Million Song Dataset (last.fm tags)
  MTT_musicnn, MTT_vgg   MagnaTagATune

all on 16 kHz audio, 96-band mel spectrograms (n_fft 512, hop 256), 187-frame (3 s)
patches. This module gets the wheel with `pip download --no-deps` (the package registry
is the only network it uses), checks its sha256 against the digest pinned below, reads
a model's tensor bundle with `tf_bundle` (every crc32c checked) and caches the result as
`<model>.npz` beside the wheel, with the ISC notice copied beside it as LICENSE.musicnn
so that the notice travels with the weights:

  ~/.cache/gtzan_jax/musicnn/           (or $GTZAN_JAX_MUSICNN_DIR, or `directory=`)
    musicnn-0.1.0-py3-none-any.whl
    MSD_musicnn.npz                     written atomically (temp file + rename)
    LICENSE.musicnn

  params = weights.load('MSD_musicnn')  # {'conv2d/kernel': array (7, 38, 1, 204), ...}

  python -m gtzan_jax.pretrained.weights --model=MSD_musicnn --list
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from gtzan_jax.pretrained import tf_bundle

PACKAGE = 'musicnn==0.1.0'
WHEEL_NAME = 'musicnn-0.1.0-py3-none-any.whl'
WHEEL_SIZE = 29292476
WHEEL_SHA256 = 'f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa'
LICENSE_MEMBER = 'musicnn-0.1.0.dist-info/LICENSE.md'
LICENSE_NAME = 'LICENSE.musicnn'
DIR_ENV = 'GTZAN_JAX_MUSICNN_DIR'

# What each checkpoint is: a model of musicnn's models.py trained on a dataset's top-50 tags.
MODELS = {
    'MSD_musicnn': 'musicnn (musically motivated front end) trained on the Million Song Dataset, top-50 last.fm tags',
    'MSD_vgg': 'VGG-like 5-layer CNN trained on the Million Song Dataset, top-50 last.fm tags',
    'MTT_musicnn': 'musicnn (musically motivated front end) trained on MagnaTagATune, top-50 tags',
    'MTT_vgg': 'VGG-like 5-layer CNN trained on MagnaTagATune, top-50 tags',
}
OPTIMIZER_SUFFIXES = ('/Adam', '/Adam_1')
OPTIMIZER_NAMES = ('beta1_power', 'beta2_power')
META_KEYS = ('__model__', '__wheel_sha256__')


def default_directory() -> str:
  """$GTZAN_JAX_MUSICNN_DIR, else ~/.cache/gtzan_jax/musicnn."""
  return os.environ.get(DIR_ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'gtzan_jax', 'musicnn')


def is_optimizer_slot(name: str) -> bool:
  """Adam's moments (`<var>/Adam`, `<var>/Adam_1`) and its beta powers: training state, not weights."""
  return name.endswith(OPTIMIZER_SUFFIXES) or name in OPTIMIZER_NAMES


def check_model(model: str) -> None:
  if model not in MODELS:
    raise ValueError(f'unknown musicnn model {model!r}; choose one of {", ".join(MODELS)}')


def sha256_of(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def check_wheel(path: str, expected: str | None = None) -> None:
  """One-line ValueError naming the file and both digests unless its sha256 is `expected` (WHEEL_SHA256)."""
  expected = expected or WHEEL_SHA256
  actual = sha256_of(path)
  if actual != expected:
    raise ValueError(f'{path}: sha256 {actual}, expected {expected} (not the pinned {PACKAGE} wheel; '
                     'delete it to download it again)')


def download_wheel(directory: str) -> str:
  """`pip download --no-deps musicnn==0.1.0` into `directory` (via a temp dir and a rename); its path."""
  os.makedirs(directory, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=directory, prefix='.download-') as tmp:
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
           '--disable-pip-version-check', '--quiet', PACKAGE, '-d', tmp]
    done = subprocess.run(cmd, capture_output=True, text=True)
    got = os.path.join(tmp, WHEEL_NAME)
    if done.returncode or not os.path.isfile(got):
      last = (done.stderr.strip().splitlines() or ['no wheel came back'])[-1]
      raise RuntimeError(f'pip download {PACKAGE} into {directory} failed: {last}')
    path = os.path.join(directory, WHEEL_NAME)
    os.replace(got, path)
  return path


def find_wheel(directory: str | None = None, download: bool = True) -> str:
  """The sha256-checked wheel in `directory` (default_directory()), downloaded first when absent."""
  directory = directory or default_directory()
  path = os.path.join(directory, WHEEL_NAME)
  if not os.path.isfile(path):
    if not download:
      raise FileNotFoundError(f'{path}: no musicnn wheel; get it with `{sys.executable} -m pip download '
                              f'--no-deps {PACKAGE} -d {directory}` (or allow downloading)')
    path = download_wheel(directory)
  check_wheel(path)
  return path


def license_text(wheel: str) -> str:
  """musicnn's ISC licence, as the wheel ships it."""
  with zipfile.ZipFile(wheel) as z:
    return z.read(LICENSE_MEMBER).decode('utf-8')


def read_wheel(wheel: str, model: str, optimizer: bool = False) -> dict[str, np.ndarray]:
  """{tensor name: array} of `model`'s checkpoint in the (already checked) wheel, crc32c checked.

  The checkpoint's `checkpoint` file names the author's own absolute path, so the bundle is
  opened by its prefix instead: `musicnn/<model>/` (its files are `musicnn/<model>/.index` and
  `.data-00000-of-00001`). Adam's slots are skipped unless `optimizer`.
  """
  check_model(model)
  member_prefix = f'musicnn/{model}/'
  with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory(prefix='musicnn-') as tmp:
    members = [n for n in z.namelist() if n.startswith(member_prefix + '.index')
               or n.startswith(member_prefix + '.data-')]
    if member_prefix + '.index' not in members:
      raise ValueError(f'{wheel}: no {member_prefix}.index inside')
    for name in members:
      with open(os.path.join(tmp, os.path.basename(name)), 'wb') as f:
        f.write(z.read(name))
    keep = None if optimizer else (lambda name: not is_optimizer_slot(name))
    try:
      return tf_bundle.read_bundle(tmp + os.sep, keep=keep)
    except (ValueError, FileNotFoundError) as e:   # name the member of the wheel, not the temp copy
      raise type(e)(str(e).replace(tmp + os.sep, f'{wheel}:{member_prefix}')) from None


def _write_atomically(path: str, write) -> None:
  tmp = f'{path}.tmp-{os.getpid()}'
  try:
    with open(tmp, 'wb') as f:
      write(f)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def npz_path(directory: str, model: str) -> str:
  return os.path.join(directory, f'{model}.npz')


def _read_cache(path: str, model: str) -> dict[str, np.ndarray] | None:
  """The cached arrays when `path` is a complete cache of `model` from the pinned wheel, else None."""
  if not (os.path.isfile(path) and os.path.isfile(os.path.join(os.path.dirname(path), LICENSE_NAME))):
    return None
  try:
    with np.load(path) as z:
      if str(z['__model__']) != model or str(z['__wheel_sha256__']) != WHEEL_SHA256:
        return None
      return {k: z[k] for k in z.files if k not in META_KEYS}
  except (OSError, KeyError, ValueError, zipfile.BadZipFile):
    return None                                   # unreadable: rebuilt from the wheel


def load(model: str, directory: str | None = None, *, wheel: str | None = None,
         optimizer: bool = False, download: bool = True) -> dict[str, np.ndarray]:
  """{tensor name: np.ndarray} of a musicnn model (MSD_musicnn, MSD_vgg, MTT_musicnn, MTT_vgg).

  From `<directory>/<model>.npz` when that was made from the pinned wheel; otherwise from the
  wheel (`wheel`, or the one in `directory`, downloaded when absent and `download`), which is
  sha256-checked, and the .npz and LICENSE.musicnn are then written beside it. `optimizer`
  includes Adam's slots (read from the wheel each time; they are not cached).
  """
  check_model(model)
  directory = directory or (os.path.dirname(os.path.abspath(wheel)) if wheel else default_directory())
  cache = npz_path(directory, model)
  if not optimizer:
    cached = _read_cache(cache, model)
    if cached is not None:
      return cached
  if wheel:
    check_wheel(wheel)
  else:
    wheel = find_wheel(directory, download)
  tensors = read_wheel(wheel, model, optimizer)
  os.makedirs(directory, exist_ok=True)
  notice = license_text(wheel).encode('utf-8')
  _write_atomically(os.path.join(directory, LICENSE_NAME), lambda f: f.write(notice))
  weights = {k: v for k, v in tensors.items() if not is_optimizer_slot(k)}
  meta = {'__model__': np.array(model), '__wheel_sha256__': np.array(WHEEL_SHA256)}
  _write_atomically(cache, lambda f: np.savez(f, **weights, **meta))
  return tensors


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m gtzan_jax.pretrained.weights', description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='MSD_musicnn', choices=list(MODELS))
  parser.add_argument('--list', action='store_true', help="print each tensor's name, shape and dtype")
  parser.add_argument('--dir', default=None, help=f'cache directory (default ${DIR_ENV} or {default_directory()})')
  parser.add_argument('--wheel', default=None, help='a musicnn-0.1.0 wheel already downloaded')
  parser.add_argument('--optimizer', action='store_true', help="include Adam's slots")
  parser.add_argument('--offline', action='store_true', help='never download the wheel')
  args = parser.parse_args(argv)
  try:
    tensors = load(args.model, args.dir, wheel=args.wheel, optimizer=args.optimizer, download=not args.offline)
  except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  if args.list:
    for name, value in tensors.items():
      print(f'{name}\t{tuple(value.shape)}\t{value.dtype}')
  directory = args.dir or (os.path.dirname(os.path.abspath(args.wheel)) if args.wheel else default_directory())
  print(f'{args.model}: {len(tensors)} tensors, {sum(v.size for v in tensors.values()):,} values '
        f'({MODELS[args.model]}); cached in {npz_path(directory, args.model)}, licence in '
        f'{os.path.join(directory, LICENSE_NAME)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
