"""Data parallelism over devices, two ways that give the same numbers.

* `pmap`: the state is replicated on every local device, each device runs the
  step on its slice of the global batch, and the step averages gradients,
  metrics and BatchNorm statistics with `lax.pmean` over the axis `batch`
  (BatchNorm itself is synchronised through the same axis).
* `jit`: one program over a 1-D `Mesh` of all devices; the state is replicated
  and the batch is sharded along its first axis with a `NamedSharding`. XLA
  inserts the cross-device reductions itself.

`DataParallel` hides the difference from the training loop: it places the
state and the batches, compiles steps, and brings the state back to the host.
It also compiles a whole epoch over a split that lives on the devices
(`put_split`, `put_order`, `compile_epoch`): one program, a `lax.scan` over
the epoch's batches, each gathered on the device, with no host round trip per
step; it gives the same numbers as feeding the same batches one step at a time.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = 'batch'
MODES = ('pmap', 'jit')


class DataParallel:
  """Places data and compiles steps for `mode` ('pmap' or 'jit') over `devices`."""

  def __init__(self, mode: str, devices: Sequence[jax.Device] | None = None):
    if mode not in MODES:
      raise ValueError(f'config.parallelism must be one of {MODES}, got {mode!r}.')
    self.mode = mode
    if devices is None:
      devices = jax.local_devices() if mode == 'pmap' else jax.devices()
    self.devices = list(devices)
    self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
    if mode == 'jit':
      self.mesh = Mesh(np.array(self.devices), (AXIS,))
      self.replicated = NamedSharding(self.mesh, P())
      self.batch_sharding = NamedSharding(self.mesh, P(AXIS))
    else:  # pmap's inputs carry a leading device axis, one entry per local device
      self.stacked = NamedSharding(Mesh(np.array(self.local_devices), (AXIS,)), P(AXIS))

  @property
  def num_devices(self) -> int:
    """Devices the global batch is split over (all processes)."""
    return len(self.devices) if self.mode == 'jit' else len(self.devices) * jax.process_count()

  @property
  def axis_name(self) -> str | None:
    """The collective axis inside a step: `batch` under pmap, none under jit."""
    return AXIS if self.mode == 'pmap' else None

  @property
  def spans_processes(self) -> bool:
    """Whether the batch is split over the devices of several processes."""
    if self.mode == 'pmap':
      return jax.process_count() > 1
    return len({d.process_index for d in self.devices}) > 1

  def check_batch_size(self, batch_size: int, what: str = 'config.batch_size') -> None:
    if batch_size % self.num_devices:
      raise ValueError(
          f'{what}={batch_size} does not divide by the {self.num_devices} devices; '
          f'use a multiple of {self.num_devices}.')

  def compile(self, step: Callable, *, donate_state: bool = True, batch_outputs: bool = False) -> Callable:
    """Compiles `step(state, batch) -> (state_or_metrics, ...)` for this mode.

    `batch_outputs`: the outputs have one row per example of the batch and stay sharded
    like it (read them with `gather_rows`); otherwise they are replicated.
    """
    donate = (0,) if donate_state else ()
    if self.mode == 'pmap':
      # pmap must get the same `devices` in every process: with several, all of them (each
      # process's own alone would keep `lax.pmean` and BatchNorm within each process).
      devices = self.local_devices if jax.process_count() == 1 else jax.devices()
      return jax.pmap(step, axis_name=AXIS, devices=devices, donate_argnums=donate)
    return jax.jit(step, in_shardings=(self.replicated, self.batch_sharding),
                   out_shardings=self.batch_sharding if batch_outputs else self.replicated,
                   donate_argnums=donate)

  def put_state(self, state: Any) -> Any:
    """Host (unreplicated) state -> replicated on the devices."""
    if self.mode == 'pmap':
      n = len(self.local_devices)
      return jax.tree.map(
          lambda x: jax.device_put(np.broadcast_to(x, (n, *np.shape(x))), self.stacked),
          jax.device_get(state))
    return jax.device_put(state, self.replicated)

  def get_state(self, state: Any) -> Any:
    """Replicated state on the devices -> one copy as numpy on the host."""
    if self.mode == 'pmap':  # device 0's shard [1, ...]; no indexing on device (transfer-guard clean)
      return jax.tree.map(lambda x: np.asarray(x.addressable_data(0))[0], state)
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), state)

  def get_metrics(self, metrics: Any) -> Any:
    """Replicated metrics -> host floats."""
    return jax.tree.map(float, self.get_state(metrics))

  def put_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's slice of the global batch -> sharded over the devices."""
    if self.mode == 'pmap':
      n = len(self.local_devices)
      return {k: jax.device_put(v.reshape(n, -1, *v.shape[1:]), self.stacked) for k, v in batch.items()}
    return {k: jax.make_array_from_process_local_data(self.batch_sharding, v)
            for k, v in batch.items()}

  def gather_rows(self, rows: jax.Array) -> np.ndarray:
    """Per-example outputs of a `batch_outputs` step -> the whole global batch's rows on the host.

    Every process gets all of them, in the order of the global batch.
    """
    if self.mode == 'pmap':  # [local devices, rows per device, ...]: device d holds rows d * B/n...
      local = np.asarray(rows).reshape(-1, *rows.shape[2:])
      if not self.spans_processes:
        return local
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return np.asarray(multihost_utils.process_allgather(local, tiled=True))
    if not self.spans_processes:
      return np.asarray(rows)
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(rows, tiled=True))

  def put_split(self, data: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """A whole split -> a full copy on every local device, for `compile_epoch`."""
    return self.put_state(data)

  def put_order(self, order: np.ndarray, batch_size: int) -> jax.Array:
    """An epoch's global example order [steps * batch_size] -> the `order` of `compile_epoch`.

    Device d of global batch b gets rows [d * B/n, (d + 1) * B/n) of it, as `put_batch` gives.
    """
    order = np.asarray(order, np.int32).reshape(-1, batch_size)
    if self.mode == 'pmap':
      n = len(self.local_devices)
      return jax.device_put(order.reshape(len(order), n, -1).transpose(1, 0, 2), self.stacked)
    return jax.device_put(order, self.replicated)

  def compile_epoch(self, step: Callable) -> Callable:
    """`epoch(state, split, order) -> (state, metrics)`: `step` over every batch of `order`, on device.

    `split` comes from `put_split`, `order` from `put_order`; `metrics` holds
    every step's metrics stacked along a leading step axis. `state` is donated.
    """
    def epoch(state, split, order):
      def body(state, rows):
        batch = {k: jnp.take(v, rows, axis=0) for k, v in split.items()}
        if self.mode == 'jit':
          batch = jax.lax.with_sharding_constraint(batch, self.batch_sharding)
        return step(state, batch)
      return jax.lax.scan(body, state, order)

    if self.mode == 'pmap':
      return jax.pmap(epoch, axis_name=AXIS, devices=self.local_devices, donate_argnums=(0,))
    return jax.jit(epoch, in_shardings=(self.replicated, self.replicated, self.replicated),
                   out_shardings=self.replicated, donate_argnums=(0,))
