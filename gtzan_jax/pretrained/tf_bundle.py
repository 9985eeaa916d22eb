"""A numpy-only reader of TensorFlow's tensor-bundle checkpoints (`<prefix>.index` + `<prefix>.data-*`).

Why: musicnn's pretrained networks reach us as TF1 checkpoints, and a user of this
project should need neither TensorFlow nor protobuf to load them. The format is small:

  <prefix>.index                 an uncompressed LevelDB SSTable, keys sorted: the key ""
                                 holds a BundleHeaderProto, every other key is a tensor
                                 name whose value is a serialized BundleEntryProto
  <prefix>.data-SSSSS-of-NNNNN   the tensors' raw little-endian bytes, at the entry's
                                 (shard_id, offset, size)

Every block of the table and every tensor carries a masked crc32c, and all of them are
checked: a damaged file ends with one line naming the file (and the tensor) and the
problem, never with silently wrong weights. Partitioned variables (`slices`) and string
tensors are not supported (musicnn has neither) and say so.

  entries = read_index('musicnn/MSD_musicnn/')      # {name: BundleEntry}, no data read
  tensors = read_bundle('musicnn/MSD_musicnn/')     # {name: np.ndarray}, crc32c checked
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable, Iterable

import google_crc32c
import numpy as np

TABLE_MAGIC = 0xdb4775248b80fb57   # LevelDB's table magic, the footer's last 8 bytes
FOOTER_SIZE = 48                   # two BlockHandles (varints), padded to 40 bytes, + magic
BLOCK_TRAILER_SIZE = 5             # compression type byte + masked crc32c
CRC_MASK_DELTA = 0xa282ead8

# tensorflow/core/framework/types.proto: DataType -> numpy dtype (little-endian).
DTYPES = {
    1: np.dtype('<f4'),    # DT_FLOAT
    2: np.dtype('<f8'),    # DT_DOUBLE
    3: np.dtype('<i4'),    # DT_INT32
    4: np.dtype('u1'),     # DT_UINT8
    5: np.dtype('<i2'),    # DT_INT16
    6: np.dtype('i1'),     # DT_INT8
    8: np.dtype('<c8'),    # DT_COMPLEX64
    9: np.dtype('<i8'),    # DT_INT64
    10: np.dtype('?'),     # DT_BOOL
    17: np.dtype('<u2'),   # DT_UINT16
    18: np.dtype('<c16'),  # DT_COMPLEX128
    19: np.dtype('<f2'),   # DT_HALF
    22: np.dtype('<u4'),   # DT_UINT32
    23: np.dtype('<u8'),   # DT_UINT64
}
DTYPE_NAMES = {7: 'DT_STRING', 14: 'DT_BFLOAT16', 20: 'DT_RESOURCE', 21: 'DT_VARIANT'}


@dataclasses.dataclass(frozen=True)
class BundleEntry:
  """Where one tensor lives: a parsed BundleEntryProto."""
  name: str
  dtype: np.dtype
  shape: tuple[int, ...]
  shard_id: int
  offset: int
  size: int
  crc32c: int          # as stored: masked


def masked_crc32c(data) -> int:
  """TensorFlow's and LevelDB's stored form of a crc32c: rotated right by 15 bits, plus a constant."""
  crc = google_crc32c.value(bytes(data) if not isinstance(data, (bytes, bytearray)) else data)
  return (((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xffffffff


# ------------------------------------------------------------------ protobuf wire format

def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
  """(value, next position) of the base-128 varint at `pos`; IndexError/ValueError when cut short."""
  result = shift = 0
  while True:
    byte = buf[pos]
    pos += 1
    result |= (byte & 0x7f) << shift
    if not byte & 0x80:
      return result, pos
    shift += 7
    if shift >= 70:
      raise ValueError('varint longer than 10 bytes')


def parse_message(buf: bytes) -> dict[int, list]:
  """{field number: [values]} of a serialized protobuf: ints for varint/fixed fields, bytes for the rest."""
  fields: dict[int, list] = {}
  pos, end = 0, len(buf)
  while pos < end:
    key, pos = read_varint(buf, pos)
    number, wire = key >> 3, key & 7
    if wire == 0:
      value, pos = read_varint(buf, pos)
    elif wire == 1:
      value, = struct.unpack_from('<Q', buf, pos)
      pos += 8
    elif wire == 2:
      length, pos = read_varint(buf, pos)
      if pos + length > end:
        raise ValueError(f'field {number} runs past the end of the message')
      value = bytes(buf[pos:pos + length])
      pos += length
    elif wire == 5:
      value, = struct.unpack_from('<I', buf, pos)
      pos += 4
    else:
      raise ValueError(f'unsupported protobuf wire type {wire} (field {number})')
    fields.setdefault(number, []).append(value)
  if pos != end:
    raise ValueError('message runs past its end')
  return fields


def _int64(value: int) -> int:
  """A varint read as protobuf's int64 (two's complement, so -1 is ten bytes)."""
  return value - (1 << 64) if value >= 1 << 63 else value


def _last(fields: dict[int, list], number: int, default=0):
  return fields[number][-1] if number in fields else default


def parse_shape(buf: bytes) -> tuple[int, ...]:
  """TensorShapeProto: repeated Dim dim = 2 {int64 size = 1; string name = 2}; unknown_rank = 3."""
  fields = parse_message(buf)
  if _last(fields, 3):
    raise ValueError('shape of unknown rank')
  return tuple(_int64(_last(parse_message(dim), 1)) for dim in fields.get(2, []))


def parse_entry(name: str, buf: bytes) -> BundleEntry:
  """A BundleEntryProto: dtype=1, shape=2, shard_id=3, offset=4, size=5, crc32c=6 (fixed32), slices=7."""
  fields = parse_message(buf)
  if 7 in fields:
    raise ValueError(f'tensor {name!r} is partitioned (slices), which this reader does not support')
  code = _last(fields, 1)
  if code not in DTYPES:
    raise ValueError(f'tensor {name!r} has dtype {DTYPE_NAMES.get(code, code)}, which this reader does not support')
  shape = parse_shape(_last(fields, 2, b''))
  if any(d < 0 for d in shape):
    raise ValueError(f'tensor {name!r} has a shape with unknown dimensions {shape}')
  if 6 not in fields:
    raise ValueError(f'tensor {name!r} has no crc32c')
  return BundleEntry(name=name, dtype=DTYPES[code], shape=shape, shard_id=_last(fields, 3),
                     offset=_int64(_last(fields, 4)), size=_int64(_last(fields, 5)), crc32c=_last(fields, 6))


# ------------------------------------------------------------------ LevelDB SSTable

def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
  offset, pos = read_varint(buf, pos)
  size, pos = read_varint(buf, pos)
  return offset, size, pos


def _read_block(table: bytes, offset: int, size: int) -> bytes:
  """The contents of the block at (offset, size), its trailer's type and crc checked."""
  if offset + size + BLOCK_TRAILER_SIZE > len(table) - FOOTER_SIZE:
    raise ValueError(f'block at offset {offset} (size {size}) runs past the end of the table')
  contents = table[offset:offset + size]
  kind = table[offset + size]
  stored, = struct.unpack_from('<I', table, offset + size + 1)
  if masked_crc32c(table[offset:offset + size + 1]) != stored:
    raise ValueError(f'block at offset {offset} fails its crc32c check')
  if kind != 0:
    raise ValueError(f'block at offset {offset} is compressed (type {kind}); only uncompressed tables are supported')
  return contents


def _block_entries(block: bytes) -> Iterable[tuple[bytes, bytes]]:
  """(key, value) of each prefix-compressed entry of a block, in order."""
  if len(block) < 4:
    raise ValueError('block shorter than its restart count')
  num_restarts, = struct.unpack_from('<I', block, len(block) - 4)
  end = len(block) - 4 - 4 * num_restarts
  if end < 0:
    raise ValueError(f'block claims {num_restarts} restarts, more than it can hold')
  pos, key = 0, b''
  while pos < end:
    shared, pos = read_varint(block, pos)
    non_shared, pos = read_varint(block, pos)
    value_len, pos = read_varint(block, pos)
    if shared > len(key) or pos + non_shared + value_len > end:
      raise ValueError(f'corrupt block entry at byte {pos}')
    key = key[:shared] + block[pos:pos + non_shared]
    pos += non_shared
    yield key, block[pos:pos + value_len]
    pos += value_len


def read_table(path: str) -> list[tuple[bytes, bytes]]:
  """Every (key, value) of an uncompressed LevelDB SSTable, in key order; ValueError naming the file."""
  with open(path, 'rb') as f:
    table = f.read()
  try:
    if len(table) < FOOTER_SIZE:
      raise ValueError(f'{len(table)} bytes, too short for a table footer ({FOOTER_SIZE})')
    magic, = struct.unpack_from('<Q', table, len(table) - 8)
    if magic != TABLE_MAGIC:
      raise ValueError('no table magic at its end (truncated or not a TensorFlow .index file)')
    footer = table[len(table) - FOOTER_SIZE:]
    _, _, pos = _block_handle(footer, 0)             # metaindex: empty in TF's bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    items = []
    for _, handle in _block_entries(_read_block(table, index_offset, index_size)):
      offset, size, _ = _block_handle(handle, 0)
      items.extend(_block_entries(_read_block(table, offset, size)))
  except (ValueError, IndexError, struct.error) as e:
    detail = str(e) if isinstance(e, ValueError) else 'truncated or corrupt table'
    raise ValueError(f'{path}: {detail}') from None
  return items


# ------------------------------------------------------------------ the bundle

def index_path(prefix: str) -> str:
  return prefix + '.index'


def data_path(prefix: str, shard: int, num_shards: int) -> str:
  return f'{prefix}.data-{shard:05d}-of-{num_shards:05d}'


def read_index(prefix: str) -> tuple[int, dict[str, BundleEntry]]:
  """(number of data shards, {tensor name: BundleEntry}) of the bundle at `prefix`, nothing read from the data."""
  path = index_path(prefix)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such checkpoint index')
  items = read_table(path)
  if not items or items[0][0] != b'':
    raise ValueError(f'{path}: no bundle header (the empty key)')
  try:
    header = parse_message(items[0][1])
    num_shards = _last(header, 1)
    if _last(header, 2) != 0:
      raise ValueError('big-endian bundle, which this reader does not support')
    entries = {}
    for key, value in items[1:]:
      name = key.decode('utf-8')
      entries[name] = parse_entry(name, value)
      if not 0 <= entries[name].shard_id < num_shards:
        raise ValueError(f'tensor {name!r} names shard {entries[name].shard_id} of {num_shards}')
  except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
    raise ValueError(f'{path}: {e if isinstance(e, ValueError) else "corrupt entry"}') from None
  return num_shards, entries


def read_bundle(prefix: str, keep: Callable[[str], bool] | None = None,
                check_crc: bool = True) -> dict[str, np.ndarray]:
  """{tensor name: array} of the bundle at `prefix` (those `keep` accepts), each one's crc32c checked.

  A tensor whose bytes do not match its size or crc32c, or that lies past the end of its
  data file, is a one-line ValueError naming the data file and the tensor.
  """
  num_shards, entries = read_index(prefix)
  wanted = [e for e in entries.values() if keep is None or keep(e.name)]
  out = {}
  for shard in sorted({e.shard_id for e in wanted}):
    path = data_path(prefix, shard, num_shards)
    if not os.path.isfile(path):
      raise FileNotFoundError(f'{path}: no such checkpoint data file (named by {index_path(prefix)})')
    with open(path, 'rb') as f:
      data = f.read()
    for e in (e for e in wanted if e.shard_id == shard):
      expected = e.dtype.itemsize * int(np.prod(e.shape, dtype=np.int64))
      if e.size != expected:
        raise ValueError(f'{path}: tensor {e.name!r} has {e.size} bytes, but {e.shape} {e.dtype} needs {expected}')
      if e.offset < 0 or e.offset + e.size > len(data):
        raise ValueError(f'{path}: tensor {e.name!r} at bytes {e.offset}..{e.offset + e.size} lies past the '
                         f'end of the file ({len(data)} bytes): truncated')
      raw = data[e.offset:e.offset + e.size]
      if check_crc and masked_crc32c(raw) != e.crc32c:
        raise ValueError(f'{path}: tensor {e.name!r} fails its crc32c check (corrupt data file)')
      out[e.name] = np.frombuffer(raw, dtype=e.dtype).reshape(e.shape).astype(e.dtype.newbyteorder('='))
  return out
