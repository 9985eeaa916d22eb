"""What a person sees of a tagged library: the summary line, and a markdown page with figures.

  stats = LibraryStats(class_names)
  stats.add(values)                      # each row's values (`tag_output.row_values`), any order
  stats.summary()                        # '1000 files: 950 classified (3 zero-padded), 50 failed, ...'
  write_report(stats, 'report/')         # report/report.md, labels.png, confidence.png, folders.png

  python -m gtzan_jax.tag_report --report=DIR tags.csv    # the same from an output file

The page: how many files were tagged and failed, the label distribution of the library,
a histogram of the top-1 probability (how sure the model is), the least certain files (the
ones worth a human look: lowest top-1 probability), the files that failed and why, and per
folder its dominant label and that label's share. Memory grows with the number of folders,
not of files: the least certain and failed files listed are capped (`LIST_FILES`).
Figures are drawn with matplotlib's Agg renderer on `Figure` objects (no pyplot) and,
like the page, written to a temporary file renamed into place.
"""

from __future__ import annotations

import collections
import heapq
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import app
from absl import flags
from matplotlib.figure import Figure

from gtzan_jax import report
from gtzan_jax import tables

LIST_FILES = 50  # least certain files, and failed files, listed on the page
LIST_FOLDERS = 200  # folders in the page's table (all of them in folders.csv)
BINS = 20  # of the confidence histogram, over [0, 1]


class LibraryStats:
  """Counts over a library's rows; see the module docstring."""

  def __init__(self, class_names: Sequence[str] = ()):
    self.class_names = list(class_names)
    self.files = self.failed = self.padded = 0
    self.seconds = 0.0
    self.labels: collections.Counter[str] = collections.Counter()
    self.label_confidence: collections.defaultdict[str, float] = collections.defaultdict(float)
    self.histogram = np.zeros(BINS, np.int64)
    self._least: list[tuple[float, int, dict[str, Any]]] = []  # max-heap (by -probability) of the K lowest
    self.errors: list[tuple[str, str]] = []
    self.reasons: collections.Counter[str] = collections.Counter()
    self.folders: dict[str, collections.Counter[str]] = {}

  def add(self, values: dict[str, Any]) -> None:
    """One row's values: 'path', 'label', 'probability', 'error', 'seconds', 'padded', maybe 'label_2'..."""
    self.files += 1
    if values.get('error'):
      self.failed += 1
      if len(self.errors) < LIST_FILES:
        self.errors.append((values['path'], values['error']))
      self.reasons[_reason_kind(values['error'])] += 1
      return
    label, p = values['label'], float(values['probability'])
    self.labels[label] += 1
    self.label_confidence[label] += p
    self.padded += bool(values.get('padded'))
    self.seconds += float(values.get('seconds') or 0.0)
    self.histogram[min(BINS - 1, int(p * BINS))] += 1
    item = (-p, -self.files, {k: values.get(k) for k in ('path', 'label', 'probability', 'label_2',
                                                         'probability_2')})
    if len(self._least) < LIST_FILES:
      heapq.heappush(self._least, item)
    elif item > self._least[0]:
      heapq.heapreplace(self._least, item)
    folder = os.path.dirname(values['path']) or '.'
    self.folders.setdefault(folder, collections.Counter())[label] += 1

  @property
  def classified(self) -> int:
    return self.files - self.failed

  def least_certain(self) -> list[dict[str, Any]]:
    """The rows of lowest top-1 probability, least certain first (ties: in walk order)."""
    return [row for _, _, row in sorted(self._least, key=lambda item: (-item[0], -item[1]))]

  def ordered_labels(self) -> list[str]:
    known = [name for name in self.class_names if name in self.labels]
    return known + sorted(set(self.labels) - set(known))

  def summary(self) -> str:
    padded = f' ({self.padded} zero-padded to one segment)' if self.padded else ''
    top = ', '.join(f'{label} {count}' for label, count in self.labels.most_common(3))
    return (f'{self.files} files: {self.classified} classified{padded}, {self.failed} failed'
            + (f'; most often {top}' if top else ''))


def _reason_kind(error: str) -> str:
  """An error's kind for counting: its text up to the first parenthesis or colon."""
  for mark in (' (', ': '):
    error = error.split(mark, 1)[0]
  return error.strip()


def _save(fig: Figure, path: str) -> None:
  stem, ext = os.path.splitext(path)
  tmp = f'{stem}.tmp{ext}'
  fig.savefig(tmp, dpi=100)
  os.replace(tmp, path)


def plot_labels(stats: LibraryStats, path: str) -> None:
  labels = stats.ordered_labels()
  counts = [stats.labels[label] for label in labels]
  fig = Figure(figsize=(max(6, 0.7 * len(labels) + 2), 4.5), layout='constrained')
  ax = fig.subplots()
  bars = ax.bar(range(len(labels)), counts, color='tab:blue')
  ax.bar_label(bars, fontsize=8)
  ax.set_xticks(range(len(labels)))
  ax.set_xticklabels(labels, rotation=45, ha='right')
  ax.set(title=f'Label distribution ({stats.classified} files classified)', ylabel='files')
  _save(fig, path)


def plot_confidence(stats: LibraryStats, path: str) -> None:
  fig = Figure(figsize=(7, 4.5), layout='constrained')
  ax = fig.subplots()
  edges = np.linspace(0, 1, BINS + 1)
  ax.bar(edges[:-1], stats.histogram, width=1 / BINS, align='edge', color='tab:orange', edgecolor='white')
  ax.set(title='Confidence: top-1 probability per file', xlabel='probability of the top label',
         ylabel='files', xlim=(0, 1))
  _save(fig, path)


def plot_folders(stats: LibraryStats, path: str, top: int = 30) -> None:
  """Label shares of the `top` folders with the most files, one stacked bar each."""
  folders = sorted(stats.folders, key=lambda f: (-sum(stats.folders[f].values()), f))[:top]
  labels = stats.ordered_labels()
  fig = Figure(figsize=(11, max(3.5, 0.35 * len(folders) + 1.5)), layout='constrained')
  ax = fig.subplots()
  left = np.zeros(len(folders))
  colors = [f'C{i % 10}' for i in range(len(labels))]
  for label, color in zip(labels, colors):
    shares = np.array([stats.folders[f][label] / sum(stats.folders[f].values()) for f in folders])
    ax.barh(range(len(folders)), shares, left=left, color=color, label=label)
    left += shares
  ax.set_yticks(range(len(folders)))
  ax.set_yticklabels([_short(f) for f in folders], fontsize=8)
  ax.invert_yaxis()
  ax.set(title=f'Labels per folder ({len(folders)} of {len(stats.folders)} with the most files)',
         xlabel='share of the folder\'s files', xlim=(0, 1))
  ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.01, 0.5), title='label')
  _save(fig, path)


def _short(path: str, width: int = 50) -> str:
  return path if len(path) <= width else '...' + path[-(width - 3):]


def _md(text: Any) -> str:
  return str(text).replace('|', '\\|').replace('\n', ' ')


def write_report(stats: LibraryStats, directory: str, source: str = '', notes: Sequence[str] = ()) -> str:
  """Writes report.md, its PNGs and folders.csv into `directory`; returns the page's path."""
  os.makedirs(directory, exist_ok=True)
  page = os.path.join(directory, 'report.md')
  lines = [f'# Library report{f": {_md(source)}" if source else ""}\n',
           f'{stats.files} files: {stats.classified} classified, {stats.failed} failed'
           + (f', {stats.padded} shorter than one segment (zero-padded)' if stats.padded else '')
           + f'; {stats.seconds / 3600:.1f} hours of audio classified.\n']
  lines += [f'- {_md(note)}' for note in notes] + ([''] if notes else [])
  if stats.classified:
    plot_labels(stats, os.path.join(directory, 'labels.png'))
    plot_confidence(stats, os.path.join(directory, 'confidence.png'))
    plot_folders(stats, os.path.join(directory, 'folders.png'))
    lines += ['## Labels\n', '![label distribution](labels.png)\n',
              tables.markdown_table(['label', 'files', 'share', 'mean probability'], [
                  [label, stats.labels[label], f'{stats.labels[label] / stats.classified:.1%}',
                   f'{stats.label_confidence[label] / stats.labels[label]:.3f}'] for label in stats.ordered_labels()]),
              '## Confidence\n', '![confidence histogram](confidence.png)\n',
              tables.markdown_table(['top-1 probability', 'files'], [
                  [f'{i / BINS:.2f}-{(i + 1) / BINS:.2f}', int(count)]
                  for i, count in enumerate(stats.histogram) if count]),
              f'## The {min(LIST_FILES, stats.classified)} least certain files\n',
              'Lowest top-1 probability first: the ones worth a listen.\n',
              tables.markdown_table(['file', 'label', 'probability', 'next label', 'its probability'], [
                  [_md(row['path']), row['label'], f'{row["probability"]:.3f}', row.get('label_2') or '',
                   '' if row.get('probability_2') is None else f'{row["probability_2"]:.3f}']
                  for row in stats.least_certain()])]
    order = {label: i for i, label in enumerate(stats.ordered_labels())}
    rows = []
    for folder in sorted(stats.folders):
      counts = stats.folders[folder]
      label, count = max(counts.items(), key=lambda item: (item[1], -order[item[0]]))  # ties: the first class
      rows.append([folder, sum(counts.values()), label, f'{count / sum(counts.values()):.0%}'])
    with open(os.path.join(directory, 'folders.csv.tmp'), 'w', newline='', encoding='utf-8',
              errors='surrogateescape') as f:
      import csv  # pylint: disable=g-import-not-at-top
      writer = csv.writer(f, lineterminator='\n')
      writer.writerow(['folder', 'files', 'dominant_label', 'share'])
      writer.writerows(rows)
    os.replace(os.path.join(directory, 'folders.csv.tmp'), os.path.join(directory, 'folders.csv'))
    shown = f' (the first {LIST_FOLDERS} of {len(rows)}; all in folders.csv)' if len(rows) > LIST_FOLDERS else ''
    lines += [f'## Per folder: the dominant label{shown}\n', '![labels per folder](folders.png)\n',
              tables.markdown_table(['folder', 'files', 'dominant label', 'its share'],
                                    [[_md(r[0])] + r[1:] for r in rows[:LIST_FOLDERS]])]
  if stats.failed:
    lines += [f'## Failed files ({stats.failed})\n',
              tables.markdown_table(['reason', 'files'], [[_md(r), n] for r, n in stats.reasons.most_common()]),
              tables.markdown_table(['file', 'error'], [[_md(p), _md(e)] for p, e in stats.errors])
              + (f'\n(the first {LIST_FILES}; all in the output\'s error column)\n'
                 if stats.failed > LIST_FILES else '')]
  report.write_text(page, '\n'.join(lines))
  return page


FLAGS = flags.FLAGS


def main(argv: Sequence[str]) -> int:
  from gtzan_jax import tag_output  # pylint: disable=g-import-not-at-top
  if len(argv) != 2:
    raise app.UsageError('Name one output file of predict (.csv or .jsonl).')
  try:
    row_format = tag_output.format_of_file(argv[1])
    stats = LibraryStats()
    for values in tag_output.read_rows(argv[1], row_format):
      stats.add(values)
    page = write_report(stats, FLAGS.report, argv[1])
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f'error: {e}') from None
  print(stats.summary(), file=sys.stderr)
  print(f'Report: {page}')
  return 0


if __name__ == '__main__':
  flags.DEFINE_string('report', None, 'Folder to write report.md and its figures into.', required=True)
  from gtzan_jax import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
