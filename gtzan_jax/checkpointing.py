"""Orbax checkpoints of the unreplicated train state plus a JSON `meta` item.

Checkpoints live in `<workdir>/checkpoints/<step>/`. Orbax writes each one into
a temporary directory and renames it when complete, so a crash mid-write never
leaves a directory that `latest_step()` would pick up. We keep the latest
`keep` checkpoints and, among the end-of-epoch ones (which carry the validation
accuracy as their metric), the best.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

_policies = ocp.checkpoint_managers


def _best_metric(metrics: dict[str, float]) -> float:
  return metrics['validation_accuracy']


class Checkpointer:
  """Saves and restores `(state, meta)` under `directory`."""

  def __init__(self, directory: str, *, keep: int = 3, use_async: bool = True):
    self.directory = os.path.abspath(directory)
    policy = _policies.AnyPreservationPolicy([
        _policies.LatestN(n=keep),
        _policies.BestN(get_metric_fn=_best_metric, n=1, keep_checkpoints_without_metrics=False),
    ])
    options = ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=use_async, best_fn=_best_metric,
        best_mode='max', keep_checkpoints_without_metrics=False,
        preservation_policy=policy)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def best_step(self) -> int | None:
    return self.manager.best_step()

  def save(self, step: int, state: Any, meta: dict[str, Any],
           metrics: dict[str, float] | None = None) -> None:
    """Starts writing `state` (host arrays, unreplicated) and `meta` at `step`."""
    self.manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        metrics=metrics, force=True)

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
    """Restores the state (shaped like `abstract_state`) and meta written at `step`."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    try:
      restored = self.manager.restore(
          step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                        meta=ocp.args.JsonRestore()))
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(
          f'Checkpoint {self.directory}/{step} does not match this config (another model or '
          f'optimizer?). Train into a new --workdir, or restore the config it was written with. '
          f'({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})') from e
    # As host numpy arrays, like the state `save` takes: orbax gives single-device arrays, which
    # `DataParallel.put_state` cannot place on a mesh that spans several processes.
    return jax.device_get(restored.state), restored.meta

  def restore_meta(self, step: int) -> dict[str, Any]:
    """The JSON meta written at `step` alone (e.g. to rebuild the model before restoring the state)."""
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()
