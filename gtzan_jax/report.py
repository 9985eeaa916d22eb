"""Metrics, tables and figures shared by evaluate and sweep (numpy and matplotlib only).

Figures are drawn on `matplotlib.figure.Figure` objects and saved as PNG with the
Agg renderer, without pyplot, so no display or global backend is involved.

  names, track_log_probs, track_labels = aggregate_tracks(log_probs, labels, tracks)
  metrics = classification_metrics(labels, log_probs.argmax(-1), class_names)
  plot_confusion(metrics['confusion'], 'Test tracks', 'confusion.png', class_names)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def aggregate_tracks(log_probs: np.ndarray, labels: np.ndarray,
                     tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Mean of each track's segment log-probabilities; its argmax is the track's prediction.

  Args:
    log_probs: [N, C] per-segment log-probabilities.
    labels: [N] segment labels (all segments of a track share one).
    tracks: [N] track names.

  Returns:
    (names [T], mean log-probabilities [T, C], labels [T]), tracks in sorted order.
  """
  names, first, inverse = np.unique(tracks, return_index=True, return_inverse=True)
  track_labels = labels[first]
  if np.any(labels != track_labels[inverse]):
    raise ValueError('Segments of one track carry different labels.')
  sums = np.zeros((len(names), log_probs.shape[1]), np.float64)
  np.add.at(sums, inverse, log_probs)
  return names, sums / np.bincount(inverse)[:, None], track_labels


def classification_metrics(labels: np.ndarray, predictions: np.ndarray,
                           class_names: Sequence[str]) -> dict[str, Any]:
  """Accuracy, per-class precision / recall / F1 / support, macro F1 and the confusion matrix.

  `confusion[i][j]` counts examples of class i predicted as j. A class that is never
  predicted (or never present) gets precision (recall) 0. The macro F1 averages over
  the classes that occur in `labels` or `predictions`.
  """
  n = len(class_names)
  confusion = np.zeros((n, n), np.int64)
  np.add.at(confusion, (labels, predictions), 1)
  correct = np.diag(confusion).astype(np.float64)
  precision = correct / np.maximum(confusion.sum(axis=0), 1)
  recall = correct / np.maximum(confusion.sum(axis=1), 1)
  f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
  per_class = {name: {'precision': float(p), 'recall': float(r), 'f1': float(f), 'support': int(s)}
               for name, p, r, f, s in zip(class_names, precision, recall, f1, confusion.sum(axis=1))}
  return {'count': int(len(labels)), 'accuracy': float(correct.sum() / max(len(labels), 1)),
          'macro_f1': float(f1[(confusion.sum(axis=0) + confusion.sum(axis=1)) > 0].mean()),
          'per_class': per_class, 'confusion': confusion.tolist()}


def write_text(path: str, text: str) -> None:
  """Writes `text` to a temporary file renamed into place: a reader never sees half a file."""
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def write_json(path: str, value: Any) -> None:
  """`write_text` of `value` as indented JSON."""
  write_text(path, json.dumps(value, indent=2))


def read_json(path: str) -> Any:
  """The JSON value in `path`; a file that is not JSON is a ValueError naming it."""
  with open(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON ({e}).') from None


def _save_figure(fig: Figure, path: str) -> None:
  stem, ext = os.path.splitext(path)
  tmp = f'{stem}.tmp{ext}'
  fig.savefig(tmp, dpi=100)
  os.replace(tmp, path)


def plot_confusion(confusion: Sequence[Sequence[int]], title: str, path: str,
                   class_names: Sequence[str]) -> None:
  """Counts and row-normalised (recall) confusion matrices side by side, as a PNG."""
  counts = np.asarray(confusion)
  normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  fig = Figure(figsize=(15, 6.5), layout='constrained')
  axes = fig.subplots(1, 2)
  for ax, matrix, kind, fmt in ((axes[0], counts, 'counts', '{:d}'), (axes[1], normalised, 'row-normalised', '{:.2f}')):
    image = ax.imshow(matrix, cmap='Blues', vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set(title=f'{title}: {kind}', xlabel='predicted', ylabel='true',
           xticks=range(len(class_names)), yticks=range(len(class_names)))
    ax.set_xticklabels(class_names, rotation=45, ha='right')
    ax.set_yticklabels(class_names)
    for (i, j), value in np.ndenumerate(matrix):
      if value:
        ax.text(j, i, fmt.format(value), ha='center', va='center', fontsize=8,
                color='white' if value > 0.6 * matrix.max() else 'black')
  _save_figure(fig, path)


def plot_clip(y: np.ndarray, mel: np.ndarray, title: str, path: str) -> None:
  """Waveform [samples] at 22.05 kHz over the log-mel segments [n, mels, frames] the model sees."""
  from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top  (librosa)
  seconds = len(y) / audio.SAMPLE_RATE
  fig = Figure(figsize=(12, 6.5), layout='constrained')
  top, bottom = fig.subplots(2, 1)
  top.plot(np.arange(len(y)) / audio.SAMPLE_RATE, y, linewidth=0.3)
  top.set(title=f'{title}: waveform', xlabel='time (s)', ylabel='amplitude', xlim=(0, seconds))
  image = bottom.imshow(np.concatenate(list(mel), axis=1), origin='lower', aspect='auto', cmap='magma',
                        extent=(0, len(mel) * audio.SEGMENT_SECONDS, 0, mel.shape[1]))
  for boundary in range(1, len(mel)):
    bottom.axvline(boundary * audio.SEGMENT_SECONDS, color='white', linewidth=0.5, alpha=0.5)
  bottom.set(title=f'log-mel spectrogram ({len(mel)} segments of {audio.SEGMENT_SECONDS} s)',
             xlabel='time (s)', ylabel='mel band', xlim=(0, seconds))
  fig.colorbar(image, ax=(top, bottom), label='dB', shrink=0.45, anchor=(0.0, 0.0))  # keeps x aligned
  _save_figure(fig, path)


def plot_curves(curves: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]], title: str,
                path: str) -> None:
  """One panel per metric, one line per run: `curves[run][metric]` is a list of (epoch, value)."""
  metrics = sorted({metric for run in curves.values() for metric in run})
  fig = Figure(figsize=(6 * len(metrics), 4.5), layout='constrained')
  axes = fig.subplots(1, len(metrics), squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    for run, run_curves in curves.items():
      points = np.asarray(run_curves.get(metric, []), np.float64).reshape(-1, 2)
      ax.plot(points[:, 0], points[:, 1], marker='o', markersize=3, label=run)
    ax.set(title=f'{title}: {metric}', xlabel='epoch', ylabel=metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  _save_figure(fig, path)
