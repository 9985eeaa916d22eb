"""The search that chose configs/musicnn_probe.py's head: genre heads on MSD_musicnn's embeddings.

  python scripts/transfer_search.py --mini=../shared/gtzan_mini --heldout=../shared/gtzan_heldout \
      [--cache=/tmp/musicnn_embeddings.npz] [--out=search.json]

Every file of both folders is embedded once by the Flax MSD_musicnn (non-overlapping 3 s
patches: its 50 tag logits, its 200-d penultimate layer, its 1506 pooled features), cached
in --cache. Then each head below is fit on gtzan_mini's patches (full-batch Adam 1e-2, 400
steps, features standardised on the training patches) and scored track by track (mean of
the patch probabilities) twice: trained on all 100 gtzan_mini clips and tested on the 60
gtzan_heldout clips; and 5-fold stratified CV on gtzan_mini (`folds.assign_folds`, seed 0).

Heads: the logistic probe alone (on the penultimate or the pooled features); the zero-shot
tag prior alone (`transfer.tag_prior_matrix`: each genre's summed tag probability,
normalised); and their mixture (probe + w * prior) / (1 + w), the probe fit either alone and
mixed afterwards, or through the mixture (what `transfer.MusicnnClassifier` does).
This script fits heads in numpy/JAX directly, on all 100 clips; the trainer's figures
(docs/study.md) come from `gtzan_jax.main` on the 80 training clips of gtzan_mel/tracks.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gtzan_jax import folds, report  # noqa: E402
from gtzan_jax.pretrained import features, musicnn, transfer, weights  # noqa: E402
from tfds_gtzan.gtzan_mel import sources  # noqa: E402

GENRES = list(sources.GENRES)


def embed_folder(root: str, apply) -> dict[str, np.ndarray]:
  top = os.path.join(root, 'genres') if os.path.isdir(os.path.join(root, 'genres')) else root
  rows = {'tags': [], 'penultimate': [], 'pooled': [], 'label': [], 'track': []}
  for genre in sorted(os.listdir(top)):
    for name in sorted(os.listdir(os.path.join(top, genre))):
      patches = features.log_mel_patches(features.load_16k(os.path.join(top, genre, name)))
      tags, penultimate, pooled = map(np.asarray, apply(patches))
      for key, value in (('tags', tags), ('penultimate', penultimate), ('pooled', pooled)):
        rows[key].append(value)
      rows['label'] += [GENRES.index(genre)] * len(patches)
      rows['track'] += [f'{genre}/{name}'] * len(patches)
  return {k: np.concatenate(v) if k in ('tags', 'penultimate', 'pooled') else np.array(v) for k, v in rows.items()}


def embeddings(mini: str, heldout: str, cache: str) -> dict[str, dict[str, np.ndarray]]:
  if cache and os.path.exists(cache):
    with np.load(cache) as z:
      return {s: {k.split('/', 1)[1]: z[k] for k in z.files if k.startswith(s + '/')} for s in ('mini', 'heldout')}
  net = musicnn.create('MSD_musicnn')
  variables = musicnn.from_checkpoint(weights.load('MSD_musicnn'), 'MSD_musicnn')

  @jax.jit
  def apply(x):
    logits, f = net.apply(variables, x, train=False)
    return logits, f['penultimate'], jnp.concatenate([f['mean_pool'], f['max_pool']], -1)

  data = {'mini': embed_folder(mini, apply), 'heldout': embed_folder(heldout, apply)}
  if cache:
    np.savez(cache, **{f'{s}/{k}': v for s, d in data.items() for k, v in d.items()})
  return data


def tag_prior(tags: np.ndarray) -> np.ndarray:
  scores = jax.nn.sigmoid(tags) @ transfer.tag_prior_matrix(GENRES)
  return np.asarray(scores / np.maximum(scores.sum(-1, keepdims=True), 1e-6))


def fit(x, y, prior, *, weight: float, l2: float, through_mixture: bool):
  """A predict(x, prior) -> [N, 10] probabilities of the probe (+ prior mixture) fit on (x, y)."""
  mean, std = x.mean(0), x.std(0) + 1e-3
  xn, y, q = jnp.asarray((x - mean) / std), jnp.asarray(y), jnp.asarray(prior)
  params = {'w': jnp.zeros((x.shape[1], 10)), 'b': jnp.zeros(10)}

  def mix(p, xn, q, w):
    return (jax.nn.softmax(xn @ p['w'] + p['b']) + w * q) / (1 + w)

  def loss(p):
    probs = mix(p, xn, q, weight if through_mixture else 0.0)
    return -jnp.mean(jnp.log(probs[jnp.arange(len(y)), y] + 1e-12)) + l2 * jnp.sum(p['w'] ** 2)

  opt = optax.adam(1e-2)
  state = opt.init(params)

  @jax.jit
  def step(p, s):
    updates, s = opt.update(jax.grad(loss)(p), s)
    return optax.apply_updates(p, updates), s

  for _ in range(400):
    params, state = step(params, state)
  return lambda x, q: np.asarray(mix(params, jnp.asarray((x - mean) / std), jnp.asarray(q), weight))


def track_correct(probs: np.ndarray, data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  names = np.unique(data['track'])
  predicted = np.array([probs[data['track'] == n].mean(0).argmax() for n in names])
  labels = np.array([data['label'][data['track'] == n][0] for n in names])
  return predicted == labels, labels


def score(head, data) -> dict:
  mini, held = data['mini'], data['heldout']
  correct, labels = track_correct(head(mini, held), held)
  result = {'heldout': int(correct.sum()), 'heldout_per_genre': {
      GENRES[g]: int(correct[labels == g].sum()) for g in np.unique(labels)}}
  fold_of = folds.assign_folds(mini['track'], mini['label'], 5, 0)
  fold = np.array([fold_of[t] for t in mini['track']])
  accuracies = []
  for k in range(5):
    train = {key: v[fold != k] for key, v in mini.items()}
    test = {key: v[fold == k] for key, v in mini.items()}
    accuracies.append(track_correct(head(train, test), test)[0].mean())
  result['cv_mean'], result['cv_std'] = float(np.mean(accuracies)), float(np.std(accuracies))
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--mini', required=True)
  parser.add_argument('--heldout', required=True)
  parser.add_argument('--cache', default=None)
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  data = embeddings(args.mini, args.heldout, args.cache)
  for split in data.values():
    split['prior'] = tag_prior(split['tags'])

  def head(feature, weight, l2, through_mixture):
    def run(train, test):
      predict = fit(train[feature], train['label'], train['prior'], weight=weight, l2=l2,
                    through_mixture=through_mixture)
      return predict(test[feature], test['prior'])
    return run

  recipes = {'zero-shot tag prior': lambda train, test: test['prior']}
  for feature in ('penultimate', 'pooled'):
    recipes[f'probe alone ({feature})'] = head(feature, 0.0, 1e-2, False)
    for weight in (0.5, 1.0, 2.0):
      recipes[f'probe ({feature}) fit alone, mixed with the prior at w={weight:g}'] = head(feature, weight, 1e-2, False)
  for feature, weight, l2 in itertools.product(('penultimate', 'pooled'), (0.7, 1.0, 1.5), (0.01, 0.02, 0.05)):
    recipes[f'probe ({feature}) fit through the mixture, w={weight:g}, L2 {l2:g}'] = head(feature, weight, l2, True)
  results = {}
  for name, recipe in recipes.items():
    r = results[name] = score(recipe, data)
    per = ', '.join(f'{g} {c}' for g, c in r['heldout_per_genre'].items())
    print(f"{name}: heldout {r['heldout']}/60 ({per}) | CV {100 * r['cv_mean']:.1f} +- {100 * r['cv_std']:.1f} %",
          flush=True)
  if args.out:
    report.write_json(args.out, results)


if __name__ == '__main__':
  main()
