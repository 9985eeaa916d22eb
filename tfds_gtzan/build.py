"""Builds one `gtzan_mel` config and prints what was read, skipped and written.

  python -m tfds_gtzan.build --config=tracks --manual_dir=/data/gtzan --data_dir=/data/tfds
  python -m tfds_gtzan.build --config=folders --manual_dir=~/Music/by_genre --data_dir=/data/tfds
  python -m tfds_gtzan.build --config=manifest --manual_dir=/data/my_collection   # manifest.csv there
  python -m tfds_gtzan.build --config=fma_small --manual_dir=/data/fma            # fma_metadata/, fma_small/

A dataset already prepared in data_dir is reused only if it was built from the audio manual_dir
holds now (the same files, sizes, labels, groups and splits); otherwise the command stops with
one line naming both, and --rebuild rebuilds it (the old copy is kept until the new one is complete).
With --segments_per_track=K a collection config keeps K segments per track instead of 15
(`gtzan_mel/<config>_seg<K>`; the trainer: --config.segments_per_track=K).

With --audio_copies=K (K >= 1) it builds the augmented variant of the config
instead (`gtzan_mel/<config>_aug<K>_<hash>`): the same validation and test, and
K augmented copies of every training clip besides it, with the --noise_* /
--pitch_* / --stretch_range / --augment_seed parameters (defaults as in
configs/default.py). The trainer reads the same dataset with
--config.augment.audio_copies=K and equal parameters.

With --features=musicnn it builds the config's musicnn variant (`gtzan_mel/<config>_musicnn`,
or `<config>_musicnn_aug<K>_<hash>` with --audio_copies): the pretrained musicnn networks'
[96, 187] patches of the same clips (`tfds_gtzan.feature_sets`); the trainer reads it with
--config.features=musicnn.

Exit status 2, with a one-line message, when manual_dir is missing, empty or does not hold
the config's layout, or the prepared dataset came from other audio.
"""

from __future__ import annotations

import collections
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging

from tfds_gtzan import augment
from tfds_gtzan import data
from tfds_gtzan import feature_sets
from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder
from tfds_gtzan.gtzan_mel import sources

_CONFIGS = [config.name for config in gtzan_mel_dataset_builder.Builder.BUILDER_CONFIGS]

FLAGS = flags.FLAGS
flags.DEFINE_enum('config', 'synthetic', _CONFIGS, 'Builder config to prepare.')
flags.DEFINE_string('manual_dir', None,
                    f'The audio: GTZAN ({sources.EXPECTED_LAYOUT}), or a collection in the config\'s layout; '
                    'not needed for synthetic.')
flags.DEFINE_boolean('rebuild', False, 'Rebuild a prepared dataset that came from other audio than manual_dir '
                     'holds (without it: a one-line error).')
flags.DEFINE_integer('segments_per_track', 0, 'Collections only: segments per track, spread over it (0: 15).',
                     lower_bound=0)
flags.DEFINE_string('data_dir', None, 'TFDS data_dir; default ~/tensorflow_datasets.')
flags.DEFINE_enum('features', feature_sets.DEFAULT, list(feature_sets.names()),
                  'Feature set (tfds_gtzan.feature_sets): mel (the paper\'s) or musicnn.')
flags.DEFINE_integer('audio_copies', 0, 'Augmented copies of every training clip (0: none).',
                     lower_bound=0)
flags.DEFINE_integer('augment_seed', 0, 'Augmentation seed.', lower_bound=0)
_DEFAULTS = augment.AugmentParams()
_PARAM_HELP = {
    'noise_prob': 'Probability of additive Gaussian noise per copy.',
    'noise_level': "Noise std relative to the clip's peak amplitude.",
    'pitch_prob': 'Probability of pitch shift + time stretch per copy.',
    'pitch_semitones': 'Pitch shift drawn uniformly from [-x, x] semitones.',
    'stretch_range': 'Time-stretch rate drawn uniformly from [1 - x, 1 + x].',
}
for _name, _help in _PARAM_HELP.items():
  flags.DEFINE_float(_name, getattr(_DEFAULTS, _name), f'With --audio_copies: {_help}')


def format_summary(summary: dict[str, Any], segment_seconds: float = 2) -> str:
  """The build summary of `info.metadata['summary']` as readable lines (segments of `segment_seconds`)."""
  segments = summary['segments']
  lines = [
      f'clips read: {summary["clips_read"]}',
      f'segments written: {sum(segments.values())} ('
      + ', '.join(f'{split} {count}' for split, count in segments.items()) + ')',
      *([f'  of which augmented copies: {summary["augmented_segments"]}']
        if summary.get('augmented_segments') else []),
      f'files skipped: {len(summary["clips_skipped"])}',
      *_skipped_lines(summary['clips_skipped']),
      f'clips shorter than {segment_seconds:g} s (no segments): {len(summary["too_short"])}',
      *(f'  {item["file"]}: {item["seconds"]} s' for item in summary['too_short']),
  ]
  counts = {'unknown_genre_files': 'files outside the GTZAN genre folders (ignored)',
            'unlisted_clips': 'clips not in the split lists (excluded)',
            'listed_missing': 'listed clips missing from manual_dir',
            'hidden_files': 'hidden files (ignored)', 'other_files': 'files that are not audio (ignored)',
            'unlisted_audio_files': 'audio files the index does not list (ignored)',
            'rows_in_other_subsets': 'rows of larger FMA subsets (ignored)',
            'groups_in_several_splits': "groups in several of the collection's own splits"}
  lines += [f'{text}: {summary[key]}' for key, text in counts.items() if summary.get(key)]
  if summary.get('labels_without_segments'):
    lines.append(f'labels left out (no file gave a segment): {", ".join(summary["labels_without_segments"])}')
  if 'tracks' in summary:  # a collection: tracks per class and split
    split_names = list(summary['segments'])
    lines.append(f'classes: {len(summary["tracks"])}; tracks per class ({" / ".join(split_names)}):')
    lines += [f'  {name}: {" / ".join(str(counts[s]) for s in split_names)}' for name, counts in
              summary['tracks'].items()]
    if any(summary['groups'].values()):
      lines.append('groups per split: ' + ', '.join(f'{s} {n}' for s, n in summary['groups'].items()))
  return '\n'.join(lines)


def _skipped_lines(skipped: list[dict[str, str]], listed: int = 20) -> list[str]:
  """Each skipped file with its reason; past `listed` of them, the count per reason and the first few files."""
  if len(skipped) <= listed:
    return [f'  {item["file"]}: {item["reason"]}' for item in skipped]
  reasons = collections.Counter(item['reason'] for item in skipped)
  return ([f'  {count} x {reason}' for reason, count in reasons.most_common()] +
          [f'  e.g. {item["file"]}: {item["reason"]}' for item in skipped[:5]] +
          ['  (every one in the dataset\'s metadata: info.metadata["summary"]["clips_skipped"])'])


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.WARNING)  # Keep TFDS's INFO chatter out of the summary.
  try:
    base = FLAGS.config
    if FLAGS.segments_per_track:
      base = gtzan_mel_dataset_builder.collection_config(base, FLAGS.segments_per_track).name
    name = f'gtzan_mel/{gtzan_mel_dataset_builder.feature_config(base, FLAGS.features).name}'
    if FLAGS.audio_copies:
      config = gtzan_mel_dataset_builder.augmented_config(
          base, copies=FLAGS.audio_copies, seed=FLAGS.augment_seed, features=FLAGS.features,
          **{param: getattr(FLAGS, param) for param in _PARAM_HELP})
      name = f'gtzan_mel/{config.name}'
    builder = data.get_builder(name, FLAGS.data_dir, FLAGS.manual_dir, rebuild=FLAGS.rebuild)
  except (ValueError, sources.ManualDirError) as e:  # StaleDataError is a ValueError
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'{name} {builder.version} in {builder.data_dir}')
  if 'augment' in builder.info.metadata:
    config = builder.builder_config
    print(augment.describe(config.copies, config.seed, config.params))
  print(format_summary(builder.info.metadata['summary'], builder.feature_set.segment_seconds))
  return 0


if __name__ == '__main__':
  app.run(main)
