"""Hand-written replacements for JAX ops that XLA:CPU runs slowly or differentiates wrongly.

The models (`models.py`) use these in place of the stock op each one names; the
XLA:CPU flags are in `xla_cpu_flags`. A kernel written for speed stays here
only with a measured A/B against the op it replaces, cited in its docstring
(BENCHMARKS.md); one written for correctness, with the test that checks it.

- `max_pool_2x2` replaces `nn.max_pool(x, (2, 2), strides=(2, 2))` (a
  reduce-window, differentiated by select_and_scatter) in the VGG. Kept after
  the A/B of 2026-12-01 (BENCHMARKS.md, "The VGG's 2x2 max-pool";
  scripts/maxpool_ab.py): same losses and gradients; on 2 cores the train step
  is 1.16x (small VGG) and 1.15x (paper VGG) faster, eval 1.60x and 1.63x.
- `conv_general_dilated` replaces `lax.conv_general_dilated` in `nn.Conv`: the
  first layer's one-channel convolution runs as a stencil on CPU (BENCHMARKS.md,
  "The first convolution as a stencil": small VGG eval 1.42x, train +2.3-3.4 %).
- The same `conv_general_dilated` speeds up a single row's convolutions on few
  channels: tagging computes one row at a time (`tagging.Forward`), and at batch 1
  XLA:CPU's convolutions are slowest there (BENCHMARKS.md, "Tagging: a row's
  convolutions"; scripts/row_forward_ab.py). Under the inference flags, a convolution
  whose input and output both have <= 16 channels runs on strided groups of columns
  (`_strided_columns`), so that YNNPACK takes it: the small VGG's forward pass 1.05-1.08x
  the kernels before (BENCHMARKS.md, "Tagging: strided columns"). Under training's flags
  a 3x3 on up to 8 input and output channels runs on pairs of columns (`_paired_columns`,
  1.23-1.36x with Eigen's convolutions).
- `global_max_pool` replaces `jnp.max` over space (the CNN's `global_pool='max'`)
  for correctness, not speed: its gradient always reaches one argmax
  (tests/test_models.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gtzan_jax import xla_cpu_flags


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """`nn.max_pool(x, (2, 2), strides=(2, 2))`, faster on XLA:CPU ([B, H, W, C]; odd edges dropped).

  The forward pass is the max of the four strided quarters of `x`; the backward
  pass sends each window's gradient to the first maximum in (row, column) order,
  as nn.max_pool's select_and_scatter does, choosing it with comparisons that
  make exactly one element of every window win. Its outputs and gradients are
  bitwise nn.max_pool's, ties included (tests/test_benchmark.py), and so are
  the VGGs' losses and parameters over their first training steps
  (scripts/maxpool_ab.py). XLA:CPU lowers select_and_scatter to index tensors
  and a scatter, and runs the reduce-window slower than the four-way maximum.

  A/B against nn.max_pool in the VGG (2026-12-01, BENCHMARKS.md, "The VGG's 2x2
  max-pool"; 2-core AMD EPYC; one process, timers interleaved). Best of 4
  rounds at load average 1.6-2.1: train step 57.4 vs 49.4 ex/s (1.16x, small
  VGG, batch 32) and 9.2 vs 8.0 (1.15x, paper VGG, batch 64); eval 1.60x and
  1.63x. Per round in CPU time, over two runs (the other at load 1.9-7.6): train
  1.10-1.23x and 1.06-1.15x, eval 1.11-1.32x and 1.15-1.35x. Not measured on a
  GPU, where it is used too.

  Why not the gradient of a reshape-and-max: JAX routes it by `x == max(x)`. In
  the compiled paper VGG on XLA:CPU no element compared equal to the max in ~17 %
  of the windows of the last two pools, so those windows passed on no gradient at
  all, silently (XLA computes the max and the comparison in different fusions; an
  optimization barrier on the pool's input did not help). tests/test_models.py
  checks every window's gradient inside the compiled model. (Where the rounding
  does not differ, the reshape-and-max passes that check too: it did on the
  2-core AMD EPYC of 2026-12-01.)
  """
  return _max_pool_fwd(x)[0]


def _quarters(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  return x[:, 0:h:2, 0:w:2], x[:, 0:h:2, 1:w:2], x[:, 1:h:2, 0:w:2], x[:, 1:h:2, 1:w:2]


def _max_pool_fwd(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  a, b, c, d = _quarters(x)
  return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d)), x


def _max_pool_bwd(x: jax.Array, g: jax.Array) -> tuple[jax.Array]:
  a, b, c, d = _quarters(x)
  first = (a >= b) & (a >= c) & (a >= d)
  second = ~first & (b >= c) & (b >= d)
  third = ~first & ~second & (c >= d)
  fourth = ~(first | second | third)
  zero = jnp.zeros_like(g)
  ga, gb, gc, gd = (jnp.where(m, g, zero) for m in (first, second, third, fourth))
  bsz, h2, w2, ch = g.shape
  top = jnp.stack([ga, gb], axis=3).reshape(bsz, h2, 2 * w2, ch)
  bottom = jnp.stack([gc, gd], axis=3).reshape(bsz, h2, 2 * w2, ch)
  dx = jnp.stack([top, bottom], axis=2).reshape(bsz, 2 * h2, 2 * w2, ch)
  return (jnp.pad(dx, ((0, 0), (0, x.shape[1] - 2 * h2), (0, x.shape[2] - 2 * w2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


def global_max_pool(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C] maxima whose gradient goes to one argmax per channel.

  Not `jnp.max`: its gradient is routed by `x == max(x)`, which fails when XLA
  recomputes `x` with different rounding (see `max_pool_2x2`); a gather from the
  argmax always passes the whole gradient on.
  """
  flat = x.reshape(x.shape[0], -1, x.shape[-1])
  return jnp.take_along_axis(flat, jnp.argmax(flat, axis=1)[:, None], axis=1)[:, 0]


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None):
  """`lax.conv_general_dilated` for `nn.Conv`, with fast paths on CPU for the first layer and for single rows.

  A stride-1 [B, H, W, 1] -> [B, H, W, C] convolution (the spectrogram's only
  channel) runs on XLA:CPU as a float32 sum of kh * kw shifted, scaled copies of
  the input, which XLA fuses into one loop. Eigen's convolution with one input
  channel took 11.6 ms for a 3x3x1x8 kernel at batch 32, the stencil 1.2 ms. The
  gradients are the convolution's own. A single row's convolutions on few channels
  go to `_strided_columns` or `_paired_columns` on CPU (see the module's docstring).
  Every other convolution, and every platform but CPU, goes to
  `lax.conv_general_dilated` unchanged.

  A/B against `lax.conv_general_dilated` (2026-11-30, BENCHMARKS.md, "The first
  convolution as a stencil"; idle 2-core Intel Xeon, one process, timers
  interleaved, best of 5-6 rounds): small VGG (batch 32) eval 766 vs 538 ex/s
  (1.42x), train +3.4 % and +2.3 % in two runs; paper VGG (batch 64) eval +4 %,
  train within noise.
  """
  plain = (lhs.ndim == 4 and feature_group_count == 1
           and all(s == 1 for s in window_strides)
           and all(d == 1 for d in (lhs_dilation or ()) + (rhs_dilation or ()))
           and dimension_numbers == jax.lax.conv_dimension_numbers(
               lhs.shape, rhs.shape, ('NHWC', 'HWIO', 'NHWC')))
  if plain:
    pads = padding
    if isinstance(pads, str):
      pads = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, pads)
    pads = tuple(tuple(p) for p in pads)
    if rhs.shape[2] == 1:
      return _cpu_conv(_stencil, lhs, rhs, pads, precision)
    row, channels = lhs.shape[0] == 1, max(rhs.shape[2:])
    if STRIDED_COLUMNS and row and channels < YNN_MIN_CHANNELS and xla_cpu_flags.ynn_takes_convolutions():
      return _cpu_conv(_strided_columns, lhs, rhs, pads, precision)
    if (PAIR_COLUMNS and row and channels <= PAIR_MAX_CHANNELS and rhs.shape[:2] == (3, 3)
        and pads == ((1, 1), (1, 1))):
      return _cpu_conv(_paired_columns, lhs, rhs, pads, precision)
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
      feature_group_count, precision=precision)


def _lax_conv(padding, precision, x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, precision=precision,
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _stencil(padding, precision, x, kernel):
  del precision  # the sum is float32
  kh, kw = kernel.shape[:2]
  h = x.shape[1] + sum(padding[0]) - kh + 1
  w = x.shape[2] + sum(padding[1]) - kw + 1
  xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0))).astype(jnp.float32)
  k = kernel.astype(jnp.float32)
  out = sum(xp[:, i:i + h, j:j + w, :] * k[i, j, 0] for i in range(kh) for j in range(kw))
  return out.astype(jnp.result_type(x, kernel))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3, 4))
def _cpu_conv(cpu_fn, x, kernel, padding, precision):
  """`_lax_conv`, computed on CPU as `cpu_fn(padding, precision, x, kernel)`; its gradients are the convolution's."""
  return jax.lax.platform_dependent(x, kernel, cpu=functools.partial(cpu_fn, padding, precision),
                                    default=functools.partial(_lax_conv, padding, precision))


def _cpu_conv_fwd(cpu_fn, x, kernel, padding, precision):
  return _cpu_conv(cpu_fn, x, kernel, padding, precision), (x, kernel)


def _cpu_conv_bwd(cpu_fn, padding, precision, residuals, g):
  del cpu_fn
  x, kernel = residuals
  return jax.vjp(functools.partial(_lax_conv, padding, precision), x, kernel)[1](g)


_cpu_conv.defvjp(_cpu_conv_fwd, _cpu_conv_bwd)


STRIDED_COLUMNS = True  # False: a row's convolution on <= 16 channels stays Eigen's (scripts/row_forward_ab.py)
YNN_MIN_CHANNELS = 17  # this jaxlib's YNNPACK takes a convolution only with this many input or output channels
PAIR_COLUMNS = True  # False: under training's flags a row's few-channel convolutions stay XLA's (the same A/B)
PAIR_MAX_CHANNELS = 8  # input and output channels up to which a row's 3x3 convolution pairs its columns


def _paired_columns(padding, precision, x, kernel):
  """A [1, H, W, C] 3x3 'SAME' convolution computed on pairs of columns (float32 sums).

  Pair b holds columns 2b and 2b + 1 side by side in its 2C channels (a reshape), and its
  outputs are columns 2b and 2b + 1 of the result. The last column of pair b - 1 and the
  first of pair b + 1 are copied beside the pair (4C channels), and a 3x1 convolution maps
  them to 2 C_out channels (a quarter of its products on zeros). At batch 1 Eigen (training's
  flags) runs that convolution much faster than the 3x3 one on C <= 8 channels (BENCHMARKS.md,
  "Tagging: a row's convolutions"); under the inference flags `_strided_columns` is faster
  still, and takes its place. The copies are one more pass over the input, into which XLA
  fuses the producer three times.
  An odd width gets a zero column, which is the 'SAME' padding; its output is dropped.
  """
  del padding  # ((1, 1), (1, 1)): 'SAME'
  _, h, w, c = x.shape
  out = kernel.shape[3]
  wide = w + w % 2
  pairs = jnp.pad(x, ((0, 0), (0, 0), (0, wide - w), (0, 0))).reshape(1, h, wide // 2, 2 * c)
  none = jnp.zeros((3, c, out), kernel.dtype)

  def block(top_left, top_right, bottom_left, bottom_right):  # [3, 2C, 2 C_out] from [3, C, C_out] blocks
    return jnp.concatenate([jnp.concatenate([top_left, top_right], axis=-1),
                            jnp.concatenate([bottom_left, bottom_right], axis=-1)], axis=1)

  # Kernel column j takes input column 2b' + d' to output column 2b + d where 2b' + d' = 2b + d + j - 1.
  k0, k1, k2 = kernel[:, 0], kernel[:, 1], kernel[:, 2]
  before = jnp.pad(pairs[:, :, :-1, c:], ((0, 0), (0, 0), (1, 0), (0, 0)))  # column 2b - 1
  after = jnp.pad(pairs[:, :, 1:, :c], ((0, 0), (0, 0), (0, 1), (0, 0)))  # column 2b + 2
  z = jnp.concatenate([pairs, before, after], axis=-1)  # [1, H, W / 2, 4C]
  taps = jnp.concatenate([block(k1, k0, k2, k1), block(k0, none, none, k2)], axis=1)[:, None]
  y = jax.lax.conv_general_dilated(z, taps, (1, 1), ((1, 1), (0, 0)), precision=precision,
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y.reshape(1, h, wide, out)[:, :, :w]


def _strided_columns(padding, precision, x, kernel):
  """A [1, H, W, C] stride-1 convolution on <= 16 channels, computed s output columns at a time.

  s = ceil(YNN_MIN_CHANNELS / C_out): 3 for 8 outputs, 2 for 16. A convolution of window
  kw + s - 1 and stride s along the width maps each step's input columns to the s output
  columns it covers side by side in s C_out channels (kernel copy d shifted d columns right;
  (s - 1) / (kw + s - 1) of its products on zeros), and a reshape puts them back in order.
  Under the inference flags YNNPACK takes XLA:CPU's convolutions, but this jaxlib leaves one
  whose input and output both have <= 16 channels to Eigen; with s C_out >= 17 outputs
  YNNPACK takes it, and at batch 1 the small VGG's forward pass was 1.05-1.08x what zero
  output channels up to 17 gave (`_widened_outputs`, removed) with pairs of columns for its
  8 -> 8 convolution (scripts/row_forward_ab.py in alternating processes, 1200 -> 1294 and
  1202 -> 1257 segments/s on the 2-core Xeon; BENCHMARKS.md, "Tagging: strided columns").
  Only where `xla_cpu_flags.ynn_takes_convolutions()`: Eigen runs the strided form slower.
  Zero columns past the end, when s does not divide the width, are the padding; their
  outputs are dropped.
  """
  _, h, w, _ = x.shape
  kh, kw, _, out = kernel.shape
  s = -(-YNN_MIN_CHANNELS // out)
  (top, bottom), (left, right) = padding
  h_out, w_out = h + top + bottom - kh + 1, w + left + right - kw + 1
  steps = -(-w_out // s)
  taps = jnp.concatenate([jnp.pad(kernel, ((0, 0), (d, s - 1 - d), (0, 0), (0, 0))) for d in range(s)], axis=-1)
  y = jax.lax.conv_general_dilated(x, taps, (1, s), ((top, bottom), (left, right + steps * s - w_out)),
                                   precision=precision, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y.reshape(1, h_out, steps * s, out)[:, :, :w_out]
