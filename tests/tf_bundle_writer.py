"""A tiny writer of TensorFlow tensor bundles (LevelDB SSTable index + data file), for tests.

Written from the format's description, independently of gtzan_jax.pretrained.tf_bundle
(it shares nothing with the reader but google_crc32c), so a test of the reader checks the
reader against the format rather than against itself. Small blocks give a multi-block
index; restart points every few entries exercise prefix compression across restarts.
"""

from __future__ import annotations

import struct

import google_crc32c
import numpy as np

MAGIC = 0xdb4775248b80fb57
DTYPE_CODES = {np.dtype('float32'): 1, np.dtype('float64'): 2, np.dtype('int32'): 3, np.dtype('int64'): 9}


def masked(data: bytes) -> int:
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff


def varint(n: int) -> bytes:
  n &= (1 << 64) - 1
  out = bytearray()
  while True:
    byte, n = n & 0x7f, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def field(number: int, value) -> bytes:
  if isinstance(value, bytes):
    return varint(number << 3 | 2) + varint(len(value)) + value
  return varint(number << 3) + varint(value)


def fixed32(number: int, value: int) -> bytes:
  return varint(number << 3 | 5) + struct.pack('<I', value)


def entry_proto(array: np.ndarray, offset: int, crc: int | None = None) -> bytes:
  shape = b''.join(field(2, field(1, d)) for d in array.shape)
  raw = array.tobytes()
  return (field(1, DTYPE_CODES[array.dtype]) + (field(2, shape) if array.ndim else b'') + field(4, offset)
          + field(5, len(raw)) + fixed32(6, masked(raw) if crc is None else crc))


def header_proto(num_shards: int = 1) -> bytes:
  return field(1, num_shards) + field(3, field(1, 1))      # endianness LITTLE (0) is the default


def block(items: list[tuple[bytes, bytes]], restart_interval: int = 3) -> bytes:
  out, restarts, last = bytearray(), [], b''
  for i, (key, value) in enumerate(items):
    shared = 0
    if i % restart_interval == 0:
      restarts.append(len(out))
    else:
      while shared < min(len(key), len(last)) and key[shared] == last[shared]:
        shared += 1
    out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
    last = key
  restarts = restarts or [0]
  return bytes(out) + b''.join(struct.pack('<I', r) for r in restarts) + struct.pack('<I', len(restarts))


def write_table(path: str, items: list[tuple[bytes, bytes]], block_size: int = 4096) -> int:
  """An uncompressed SSTable of sorted `items`; returns its number of data blocks."""
  items = sorted(items)
  out, index = bytearray(), []

  def emit(contents: bytes) -> bytes:
    handle = varint(len(out)) + varint(len(contents))
    out.extend(contents + b'\x00' + struct.pack('<I', masked(contents + b'\x00')))
    return handle

  pending: list[tuple[bytes, bytes]] = []
  for key, value in items:
    pending.append((key, value))
    if sum(len(k) + len(v) for k, v in pending) >= block_size:
      index.append((key, emit(block(pending))))
      pending = []
  if pending:
    index.append((pending[-1][0], emit(block(pending))))
  metaindex = emit(block([]))
  index_handle = emit(block(index, restart_interval=1))
  out += (metaindex + index_handle).ljust(40, b'\x00') + struct.pack('<Q', MAGIC)
  with open(path, 'wb') as f:
    f.write(out)
  return len(index)


def write_bundle(prefix: str, tensors: dict[str, np.ndarray], block_size: int = 4096) -> int:
  """`<prefix>.index` and `<prefix>.data-00000-of-00001` holding `tensors`; returns the index's data blocks."""
  data, items = bytearray(), [(b'', header_proto())]
  for name, array in sorted(tensors.items()):
    items.append((name.encode(), entry_proto(array, len(data))))
    data += array.tobytes()
  with open(prefix + '.data-00000-of-00001', 'wb') as f:
    f.write(data)
  return write_table(prefix + '.index', items, block_size)
