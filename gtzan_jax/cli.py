"""What the command-line tools share: flag parsing with one-line errors, and the error wrapper.

  if __name__ == '__main__':
    cli.run(main)                      # instead of absl's app.run(main)

  def main(argv):
    return cli.run_command(lambda: work(FLAGS.config), FLAGS.config)

A mistyped flag or config field (`--config.bogus=1`), a value of the wrong type or one
that cannot work ends the command with one line, `error: ...`, naming the flag and,
for an unknown config field, the closest real ones. `--verbosity=1` shows tracebacks.
"""

from __future__ import annotations

import difflib
import logging as std_logging
import os
import re
import runpy
from typing import Any, Callable, Sequence

import jax
import ml_collections
from absl import app
from absl import flags
from absl import logging

from gtzan_jax import run_control

FLAGS = flags.FLAGS
# The errors that mean "bad input" (not a bug): one line each, no traceback.
USER_ERRORS = (ValueError, FileNotFoundError, run_control.NonFiniteLossError)


def quiet_library_logs() -> None:
  """Keeps orbax's per-checkpoint INFO chatter out of the console (warnings still show)."""

  def keep(record) -> bool:
    return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname

  logging.get_absl_logger().addFilter(keep)


def use_compilation_cache(directory: str | None) -> None:
  """Points JAX's persistent compilation cache at `directory` unless JAX already has one.

  A later process compiling the same step (a rerun, a resumed run, the next fold or sweep value)
  loads it from there instead of compiling. JAX settles on its cache at its first compilation, so
  call this before anything compiles; JAX_COMPILATION_CACHE_DIR, when set, wins.
  """
  if directory and not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.path.expanduser(directory))


def _verbose() -> bool:
  return logging.get_verbosity() >= logging.DEBUG


def run_command(work: Callable[[], Any], config: ml_collections.ConfigDict | None = None) -> Any:
  """Runs a training command's work for its absl main(); returns what `work` returns.

  With `config`, first turns on its `compilation_cache_dir`. A SIGTERM/SIGINT stop prints where
  the run was checkpointed and returns None. Bad input and a NaN stop exit with one line,
  `error: ...`; `--verbosity=1` shows the traceback.
  """
  quiet_library_logs()
  if config is not None:
    use_compilation_cache(config.get('compilation_cache_dir'))
  try:
    return work()
  except run_control.TrainingInterrupted as e:
    print(e, flush=True)
    return None
  except USER_ERRORS as e:
    if _verbose():
      raise
    raise SystemExit(f'error: {e} (--verbosity=1 shows the traceback)') from None


def _config_keys(config: ml_collections.ConfigDict, prefix: str = '') -> list[str]:
  keys = []
  for key, value in config.items():
    keys.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      keys += _config_keys(value, f'{prefix}{key}.')
  return keys


def unknown_config_field(argv: Sequence[str]) -> str | None:
  """'--config.X=V: ...' for the first override in `argv` that names no field of the --config file."""
  paths = [a.split('=', 1)[1] for a in argv if a.startswith('--config=')]
  if not paths:
    return None
  try:
    config = runpy.run_path(paths[-1].split(':', 1)[0])['get_config']()
  except Exception:  # pylint: disable=broad-except  (absl reports a bad config file itself)
    return None
  keys = _config_keys(config)
  for arg in argv:
    match = re.match(r'--config\.([\w.]+)(=.*)?$', arg)
    if match and match.group(1) not in keys:
      key = match.group(1)
      close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
      hint = f'; did you mean {" or ".join(repr(c) for c in close)}?' if close else (
          f'; its fields: {", ".join(k for k in keys if "." not in k)}')
      return f'{arg}: {paths[-1]} has no field {key!r}{hint}'
  return None


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing, with every failure as one line naming the flag."""
  try:
    return FLAGS(argv)
  except flags.Error as e:  # absl's own messages name the flag and fit on one line
    raise SystemExit(f'error: {str(e).splitlines()[0]}') from None
  except (AttributeError, KeyError) as e:  # ml_collections: an override names no config field
    if _verbose_argv(argv):
      raise
    raise SystemExit(f'error: {unknown_config_field(argv) or e}') from None


def _verbose_argv(argv: Sequence[str]) -> bool:
  return any(a in ('--verbosity=1', '-v=1', '--v=1') for a in argv)


def run(main: Callable[[list[str]], Any]) -> None:
  """`absl.app.run(main)` with `parse_flags`."""
  app.run(main, flags_parser=parse_flags)


def check_flag(ok: bool, message: str) -> None:
  """Exits with `error: message` when a flag's value cannot work."""
  if not ok:
    raise SystemExit(f'error: {message}')

