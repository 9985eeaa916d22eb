"""Builds one `gtzan_mel` config and prints what was read, skipped and written.

  python -m tfds_gtzan.build --config=tracks --manual_dir=/data/gtzan --data_dir=/data/tfds

Exit status 2, with a one-line message, when manual_dir is missing, empty or has
no GTZAN genre folder.
"""

from __future__ import annotations

import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging

from tfds_gtzan import data
from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder
from tfds_gtzan.gtzan_mel import sources

_CONFIGS = [config.name for config in gtzan_mel_dataset_builder.Builder.BUILDER_CONFIGS]

FLAGS = flags.FLAGS
flags.DEFINE_enum('config', 'synthetic', _CONFIGS, 'Builder config to prepare.')
flags.DEFINE_string('manual_dir', None,
                    f'GTZAN folder ({sources.EXPECTED_LAYOUT}); not needed for synthetic.')
flags.DEFINE_string('data_dir', None, 'TFDS data_dir; default ~/tensorflow_datasets.')


def format_summary(summary: dict[str, Any]) -> str:
  """The build summary of `info.metadata['summary']` as readable lines."""
  segments = summary['segments']
  lines = [
      f'clips read: {summary["clips_read"]}',
      f'segments written: {sum(segments.values())} ('
      + ', '.join(f'{split} {count}' for split, count in segments.items()) + ')',
      f'files skipped: {len(summary["clips_skipped"])}',
      *(f'  {item["file"]}: {item["reason"]}' for item in summary['clips_skipped']),
      f'clips shorter than 2 s (no segments): {len(summary["too_short"])}',
      *(f'  {item["file"]}: {item["seconds"]} s' for item in summary['too_short']),
  ]
  counts = {'unknown_genre_files': 'files outside the GTZAN genre folders (ignored)',
            'unlisted_clips': 'clips not in the split lists (excluded)',
            'listed_missing': 'listed clips missing from manual_dir'}
  lines += [f'{text}: {summary[key]}' for key, text in counts.items() if summary[key]]
  return '\n'.join(lines)


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.WARNING)  # Keep TFDS's INFO chatter out of the summary.
  name = f'gtzan_mel/{FLAGS.config}'
  try:
    builder = data.get_builder(name, FLAGS.data_dir, FLAGS.manual_dir)
  except sources.ManualDirError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'{name} {builder.version} in {builder.data_dir}')
  print(format_summary(builder.info.metadata['summary']))
  return 0


if __name__ == '__main__':
  app.run(main)
