"""The one writer of summaries and tables: mean ± std over runs, markdown tables (numpy only).

Used by evaluate, crossval, sweep, benchmark and scripts/crossval_arms.py, so every
report formats a figure the same way; it imports nothing heavier than numpy, so the
benchmark keeps running on an accelerator image that has only JAX.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def mean_std(values: Sequence[float]) -> dict[str, float]:
  """{'mean', 'std'} of `values` (population std, as over cross-validation folds); None for none."""
  if not len(values):
    return {'mean': None, 'std': None}
  return {'mean': float(np.mean(values)), 'std': float(np.std(values))}


def percent_mean_std(stats: Mapping[str, float | None], scale: float = 100.0) -> str:
  """'83.0 ± 5.1' from a `mean_std` of fractions (`scale` 1 for values already in %); '-' for none."""
  if stats['mean'] is None:
    return '-'
  return f"{scale * stats['mean']:.1f} ± {scale * stats['std']:.1f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A GitHub-flavoured markdown table; floats with 4 significant digits, None as an empty cell."""
  def cell(value: Any) -> str:
    if value is None:
      return ''
    return f'{value:.4g}' if isinstance(value, float) else str(value)

  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
  return '\n'.join(lines) + '\n'
