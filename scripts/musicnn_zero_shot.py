"""Zero-shot genre from musicnn's MSD tags: no training at all, on labelled folders of audio.

  python scripts/musicnn_zero_shot.py --audio=../shared/gtzan_heldout [--audio=../shared/gtzan_mini] \
      [--model=MSD_musicnn] [--out=zero_shot.json]

Each file: non-overlapping 3 s patches (`pretrained.features`), the Flax network's tag
probabilities averaged over them, then each GTZAN genre scored by the most probable of the
MSD tags mapped to it (TAGS_OF; disco and reggae have no MSD tag, so they are never predicted),
and the file given the best-scoring genre. Prints per-genre counts per folder.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gtzan_jax import report  # noqa: E402
from gtzan_jax.pretrained import features, musicnn, transfer, weights  # noqa: E402
from tfds_gtzan.gtzan_mel import sources  # noqa: E402

MSD_TAGS = list(transfer.MSD_TAGS)
TAGS_OF = {genre: list(tags) for genre, tags in transfer.GENRE_TAGS.items()
           if genre in sources.GENRES}  # the GTZAN genres that have an MSD tag (issue 20's mapping)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--audio', action='append', required=True)
  parser.add_argument('--model', default='MSD_musicnn', choices=['MSD_musicnn', 'MSD_vgg'])
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  net = musicnn.create(args.model)
  variables = musicnn.from_checkpoint(weights.load(args.model), args.model)
  tags = jax.jit(lambda x: jax.nn.sigmoid(net.apply(variables, x, train=False)[0]))
  genres = sorted(TAGS_OF)
  columns = [[MSD_TAGS.index(t) for t in TAGS_OF[g]] for g in genres]
  results = {}
  for root in args.audio:
    top = os.path.join(root, 'genres') if os.path.isdir(os.path.join(root, 'genres')) else root
    counts, files = collections.OrderedDict(), []
    for genre in sorted(os.listdir(top)):
      for name in sorted(os.listdir(os.path.join(top, genre))):
        patches = features.log_mel_patches(features.load_16k(os.path.join(top, genre, name)))
        probabilities = np.asarray(tags(patches)).mean(axis=0)
        scores = [probabilities[c].max() for c in columns]
        predicted = genres[int(np.argmax(scores))]
        files.append({'file': f'{genre}/{name}', 'predicted': predicted,
                      'scores': dict(zip(genres, map(float, scores)))})
        c = counts.setdefault(genre, [0, 0])
        c[0] += predicted == genre
        c[1] += 1
    correct, total = sum(c for c, _ in counts.values()), sum(n for _, n in counts.values())
    results[root] = {'correct': correct, 'count': total, 'per_genre': counts, 'files': files}
    print(f'{args.model} zero-shot on {root}: {correct}/{total} ({100 * correct / total:.1f} %); '
          + ', '.join(f'{g} {c}/{n}' for g, (c, n) in counts.items()), flush=True)
  if args.out:
    report.write_json(args.out, {'model': args.model, 'tags_of': TAGS_OF, 'results': results})


if __name__ == '__main__':
  main()
