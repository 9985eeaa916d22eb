"""Scores a trained workdir on a folder of labelled audio it has never seen: the honest figure.

  python scripts/heldout_eval.py --workdir=runs/default --audio=../shared/gtzan_heldout \
      [--checkpoint=latest] [--out=runs/default/heldout.json]

`--audio` holds `genres/<genre>/<file>` (or `<genre>/<file>`), the genre folders named as the
model's classes. Every file is classified as `gtzan_jax.predict` does (the dataset's segments,
the mean of their log-probabilities), so the figure is the track-level accuracy a user gets.
Prints per-genre counts and writes them, with every file's prediction, as JSON.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gtzan_jax import evaluation, predict, report  # noqa: E402
from tfds_gtzan import audio  # noqa: E402


def score_folder(workdir: str, root: str, checkpoint: str = 'latest') -> dict:
  """{'accuracy', 'correct', 'count', 'per_genre': {genre: [correct, count]}, 'files': [...]}."""
  trained = evaluation.load_trained(workdir, checkpoint)
  names = trained.class_names
  top = os.path.join(root, 'genres') if os.path.isdir(os.path.join(root, 'genres')) else root
  per_genre, files = collections.OrderedDict(), []
  for genre in sorted(os.listdir(top)):
    if not os.path.isdir(os.path.join(top, genre)):
      continue
    if genre not in names:
      raise SystemExit(f'error: {os.path.join(top, genre)}: the model has no class {genre!r} ({", ".join(names)}).')
    for name in sorted(os.listdir(os.path.join(top, genre))):
      path = os.path.join(top, genre, name)
      try:
        prediction = predict.predict_file(trained, path)
      except audio.AudioError as e:
        print(f'skipped: {e}', file=sys.stderr)
        continue
      label = names[int(prediction.probabilities.argmax())]
      files.append({'file': os.path.relpath(path, root), 'genre': genre, 'predicted': label,
                    'probability': float(prediction.probabilities.max())})
      counts = per_genre.setdefault(genre, [0, 0])
      counts[0] += label == genre
      counts[1] += 1
  correct, count = sum(c for c, _ in per_genre.values()), sum(n for _, n in per_genre.values())
  return {'workdir': workdir, 'checkpoint': checkpoint, 'step': trained.step, 'audio': root,
          'accuracy': correct / max(count, 1), 'correct': correct, 'count': count,
          'per_genre': per_genre, 'files': files}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--audio', required=True)
  parser.add_argument('--checkpoint', default='latest', choices=evaluation.CHECKPOINTS)
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  result = score_folder(args.workdir, args.audio, args.checkpoint)
  print(f"{args.workdir} ({args.checkpoint}, step {result['step']}) on {args.audio}: "
        f"{100 * result['accuracy']:.1f} % ({result['correct']}/{result['count']}); "
        + ', '.join(f'{g} {c}/{n}' for g, (c, n) in result['per_genre'].items()))
  confusions = collections.Counter((f['genre'], f['predicted']) for f in result['files'] if f['genre'] != f['predicted'])
  print('misclassified as: ' + ', '.join(f'{g} -> {p} {n}' for (g, p), n in confusions.most_common()))
  if args.out:
    report.write_json(args.out, result)


if __name__ == '__main__':
  main()
