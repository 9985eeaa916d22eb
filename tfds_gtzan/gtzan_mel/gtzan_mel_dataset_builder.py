"""TFDS builder for `gtzan_mel`: 2 s log-mel segments of GTZAN clips.

  builder = tfds.builder('gtzan_mel/tracks', data_dir=D)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=M))

Every config stores the same features; they differ in where the clips come from
(`synthetic`: generated, no download; the others: GTZAN in manual_dir) and how
they are split. Files that cannot be decoded are skipped; what was read, skipped
and written is recorded in `info.metadata['summary']`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import collections
from typing import Any

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from tfds_gtzan import audio
from tfds_gtzan import synthetic
from tfds_gtzan.gtzan_mel import featurize
from tfds_gtzan.gtzan_mel import sources
from tfds_gtzan.gtzan_mel import splits

TRACKS_SEED = 0
TRACKS_FRACTIONS = {'validation': 0.1, 'test': 0.1}  # Per genre; train gets the rest.
PAPER_SEED = 0
PAPER_FRACTIONS = {'validation': 0.145, 'test': 0.145}  # Of all segments.

_CITATION = """\
@article{tzanetakis2002musical,
  title={Musical genre classification of audio signals},
  author={Tzanetakis, George and Cook, Perry},
  journal={IEEE Transactions on Speech and Audio Processing},
  volume={10}, number={5}, pages={293--302}, year={2002}
}
@article{kereliuk2015deep,
  title={Deep learning and music adversaries},
  author={Kereliuk, Corey and Sturm, Bob L. and Larsen, Jan},
  journal={IEEE Transactions on Multimedia},
  volume={17}, number={11}, pages={2059--2071}, year={2015}
}"""

_GTZAN_SOURCE = ('Reads GTZAN from manual_dir (genres/<genre>/<genre>.NNNNN.wav or '
                 '<genre>/<genre>.NNNNN.wav; .wav, .au, .flac, .mp3, .ogg).')

Example = tuple[sources.Clip, int, np.ndarray]  # (clip, segment index, mel)


class Builder(tfds.core.GeneratorBasedBuilder):
  """GTZAN as [128, 173] float16 log-mel segments, one example per 2 s segment."""

  # Bump VERSION (and add RELEASE_NOTES) whenever features, feature parameters,
  # the clips read or the splits change: a prepared dataset is reused by version.
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name='synthetic',
          description=(
              f'{synthetic.CLIPS_PER_GENRE} generated 30 s clips per genre '
              '(tfds_gtzan.synthetic), split track-disjointly '
              f'{"/".join(map(str, synthetic.SPLIT_COUNTS.values()))} per genre into '
              'train/validation/test. Needs no download; for tests and smoke runs.')),
      tfds.core.BuilderConfig(
          name='fault_filtered',
          description=(
              'The artist-disjoint, fault-filtered split of Kereliuk, Sturm & Larsen '
              '(2015): 443/197/290 listed clips; the 70 other clips are excluded. '
              f'Listed clips missing from manual_dir are counted in the summary. {_GTZAN_SOURCE}')),
      tfds.core.BuilderConfig(
          name='tracks',
          description=(
              'Every readable clip, split track-disjointly 80/10/10 within each genre '
              f'(fixed seed {TRACKS_SEED}). Works on any subset of GTZAN. {_GTZAN_SOURCE}')),
      tfds.core.BuilderConfig(
          name='paper',
          description=(
              "The paper's protocol: all segments of all readable clips shuffled "
              f'(fixed seed {PAPER_SEED}) into ~71/14.5/14.5 % train/validation/test '
              '(~10k/2k/2k on full GTZAN). Segments of one clip land in several '
              'splits, which inflates test accuracy: prefer `tracks` or '
              f'`fault_filtered`. {_GTZAN_SOURCE}')),
  ]
  DEFAULT_BUILDER_CONFIG_NAME = 'synthetic'
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Except for the `synthetic` config, extract GTZAN (genres.tar.gz) so that '
      f'manual_dir holds {sources.EXPECTED_LAYOUT}.')

  def __init__(self, *, file_format: str | None = 'array_record', **kwargs: Any):
    """Like GeneratorBasedBuilder, but stores ArrayRecord by default (random access)."""
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'mel': tfds.features.Tensor(
                shape=(audio.N_MELS, audio.FRAMES), dtype=audio.MEL_DTYPE,
                encoding=tfds.features.Encoding.BYTES,
                doc='Log-mel spectrogram in dB (ref 1.0, top_db 80), float16: '
                    f'{audio.N_MELS} mel bands x {audio.FRAMES} frames of one 2 s '
                    'segment at 22050 Hz (n_fft 512, hop 256).'),
            'label': tfds.features.ClassLabel(names=sources.GENRES, doc='Genre.'),
            'track': tfds.features.Text(doc='Clip name, e.g. blues.00000.'),
            'segment': tfds.features.Scalar(
                np.int32, doc=f'Index of the 2 s segment in its clip, 0-{audio.MAX_SEGMENTS - 1}.'),
        }),
        supervised_keys=('mel', 'label'),
        homepage='http://marsyas.info/downloads/datasets.html',
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(audio.FEATURE_PARAMS),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    clips, summary = self._find_clips(dl_manager)
    results = featurize.featurize(clips)
    examples = self._assign_splits([r for r in results if r.mel is not None and len(r.mel)])
    summary = _summarize(summary, results, examples)
    self.info.metadata['summary'] = summary
    logging.info('gtzan_mel/%s: %s', self.builder_config.name, summary)
    empty = [split for split, split_examples in examples.items() if not split_examples]
    if empty:  # TFDS cannot write an empty split.
      raise sources.ManualDirError(
          f'manual_dir {_manual_dir(dl_manager)} gives no examples for the {" and ".join(empty)} '
          f'split of gtzan_mel/{self.builder_config.name} ({summary["clips_read"]} clips read, '
          f'{len(summary["clips_skipped"])} skipped, {len(summary["too_short"])} shorter than 2 s).')
    return {split: self._generate_examples(examples[split]) for split in splits.SPLITS}

  def _generate_examples(self, examples: Sequence[Example]) -> Iterator[tuple[str, dict[str, Any]]]:
    for clip, segment, mel in examples:
      yield f'{clip.track}_{segment:02d}', {
          'mel': mel, 'label': clip.label, 'track': clip.track, 'segment': segment}

  def _find_clips(self, dl_manager: tfds.download.DownloadManager
                  ) -> tuple[list[sources.Clip], dict[str, Any]]:
    """The clips to featurise, and a summary of the search."""
    summary = {'clips_skipped': [], 'unknown_genre_files': 0, 'listed_missing': 0,
               'unlisted_clips': 0}
    if self.builder_config.name == 'synthetic':
      return sources.synthetic_clips(), summary
    found = sources.find_clips(_manual_dir(dl_manager))
    summary['clips_skipped'] = [{'file': c.file, 'reason': 'another file has the same track name'}
                                for c in found.duplicates]
    summary['unknown_genre_files'] = len(found.unknown_genre_files)
    if found.unknown_genre_files:
      logging.warning('Ignoring %d files outside the GTZAN genre folders, e.g. %s',
                      len(found.unknown_genre_files), found.unknown_genre_files[0])
    if self.builder_config.name != 'fault_filtered':
      return found.clips, summary
    listed = splits.fault_filtered_tracks()
    clips = [c for c in found.clips if c.track in listed]
    summary['unlisted_clips'] = len(found.clips) - len(clips)
    summary['listed_missing'] = len(listed) - len(clips)
    return clips, summary

  def _assign_splits(self, results: Sequence[featurize.ClipFeatures]) -> dict[str, list[Example]]:
    """Examples per split, each list sorted by (track, segment)."""
    segments = [(r.clip.track, i) for r in results for i in range(len(r.mel))]
    if self.builder_config.name == 'paper':
      segment_split = splits.shuffled_split(segments, seed=PAPER_SEED, fractions=PAPER_FRACTIONS)
    else:
      track_split = self._track_splits([r.clip for r in results])
      segment_split = {(track, i): track_split[track] for track, i in segments}
    by_track = {r.clip.track: r for r in results}
    examples = {split: [] for split in splits.SPLITS}
    for track, i in sorted(segments):
      examples[segment_split[track, i]].append((by_track[track].clip, i, by_track[track].mel[i]))
    return examples

  def _track_splits(self, clips: Sequence[sources.Clip]) -> dict[str, str]:
    """{track: split} for the track-disjoint configs."""
    if self.builder_config.name == 'synthetic':
      return {clip.track: synthetic.split_of(clip.index) for clip in clips}
    if self.builder_config.name == 'fault_filtered':
      return splits.fault_filtered_tracks()
    tracks_by_genre = collections.defaultdict(list)
    for clip in clips:
      tracks_by_genre[clip.label].append(clip.track)
    return splits.stratified_split(tracks_by_genre, seed=TRACKS_SEED, fractions=TRACKS_FRACTIONS)


def _manual_dir(dl_manager: tfds.download.DownloadManager) -> epath.Path:
  """The manual_dir as given (default: <data_dir>/downloads/manual), unchecked.

  Not `dl_manager.manual_dir`: for a missing or empty folder that raises a
  multi-line AssertionError which does not name the path.
  """
  return dl_manager._manual_dir  # pylint: disable=protected-access


def _summarize(search: dict[str, Any], results: Sequence[featurize.ClipFeatures],
               examples: dict[str, list[Example]]) -> dict[str, Any]:
  """JSON-serialisable account of what was read, skipped and written."""
  return {
      'clips_read': sum(r.error is None for r in results),
      'clips_skipped': search['clips_skipped'] + [
          {'file': r.clip.file, 'reason': r.error} for r in results if r.error],
      'too_short': [{'file': r.clip.file, 'seconds': round(r.seconds, 3)}
                    for r in results if r.mel is not None and not len(r.mel)],
      'unknown_genre_files': search['unknown_genre_files'],
      'listed_missing': search['listed_missing'],
      'unlisted_clips': search['unlisted_clips'],
      'segments': {split: len(split_examples) for split, split_examples in examples.items()},
  }
