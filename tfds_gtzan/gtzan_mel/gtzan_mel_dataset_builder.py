"""TFDS builder for `gtzan_mel`: log-mel segments of GTZAN clips (2 s log-mel dB, or musicnn's 3 s patches).

  builder = tfds.builder('gtzan_mel/tracks', data_dir=D)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=M))

The built-in configs store the paper's features (feature set 'mel': [128, 173] dB of
2 s segments); they differ in where the clips come from (`synthetic`: generated, no
download; `fault_filtered`, `tracks`, `paper`: GTZAN in manual_dir; `folders`, `manifest`,
`fma_*`: any labelled collection, its class names its own, at most 15 segments spread over
each whole track, `CollectionConfig`) and how they are split. Files that cannot
be decoded are skipped; what was read, skipped and written is recorded in
`info.metadata['summary']`, and where the audio came from in `info.metadata['source']`
(`tfds_gtzan.data.get_builder` refuses a prepared dataset whose source differs from
manual_dir's). Splits are written shard by shard in sorted order (`_download_and_prepare`).

Another feature set of `tfds_gtzan.feature_sets` is a derived config, '<base>_<features>':
`tracks_musicnn`, `synthetic_musicnn`, `fault_filtered_musicnn`, `paper_musicnn` hold
musicnn's input ([96, 187] patches of 3 s, at most 10 per clip) of the same clips, with the
same skip-and-report summary and, for the track-disjoint configs, the same tracks in each
split (`paper` shuffles segments, and a clip has other segments here). They are always
registered: `tfds.builder('gtzan_mel/tracks_musicnn')`; `feature_config(base, features)`
gives the config.

Audio augmentation (`tfds_gtzan.augment`) is a derived config: the same clips and
split assignment as its base config, identical validation and test splits, and a
training split that also holds K augmented copies of every training clip
(feature `copy`: 0 original, 1..K augmented). Its name encodes the base, K and a
hash of the parameters, so each variant is prepared in its own directory:

  config = augmented_config('tracks', copies=2, seed=0, noise_prob=0.5)  # Default parameters.
  builder = tfds.builder(f'gtzan_mel/{config.name}', data_dir=D)  # tracks_aug2_63f3e1dc
  augmented_config('tracks', copies=2, features='musicnn').name     # tracks_musicnn_aug2_<hash>

`augmented_config` registers the name in this process; `tfds.builder` and
`tfds.data_source` then accept it like the built-in configs (once prepared, TFDS
also reads it by name without the registration, from its files).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import collections
import dataclasses
import functools
import hashlib
import json
import os
import shutil
from typing import Any

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from tfds_gtzan import audio
from tfds_gtzan import augment
from tfds_gtzan import feature_sets
from tfds_gtzan import synthetic
from tfds_gtzan.gtzan_mel import catalog
from tfds_gtzan.gtzan_mel import featurize
from tfds_gtzan.gtzan_mel import fma
from tfds_gtzan.gtzan_mel import sources
from tfds_gtzan.gtzan_mel import splits

TRACKS_SEED = 0
TRACKS_FRACTIONS = {'validation': 0.1, 'test': 0.1}  # Per genre; train gets the rest.
_FRACTIONS_TEXT = '80/10/10 within each class'
_SEGMENTS_TEXT = ('A track gives at most 15 segments (`segments_per_track`) spread evenly over its whole '
                  'length, so a 4-minute song is not reduced to its intro; `segment` is a segment\'s '
                  'position (its start over the segment length).')
SHARD_BYTES = 256 << 20  # features per ArrayRecord file
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

Example = tuple[sources.Clip, int, np.ndarray, int]  # (clip, segment index, mel, copy)


@dataclasses.dataclass(eq=False)
class CollectionConfig(tfds.core.BuilderConfig):
  """Any labelled collection: its `layout` ('folders', 'manifest', 'fma'), class names from the data.

  Each track gives at most `segments_per_track` segments, spread evenly over the whole track
  (`feature_sets.spread`: all of them for a track that has no more; a 30 s clip gives 14 or
  15), decoded up to `feature_sets.MAX_TRACK_SECONDS`. `collection_config(base, segments_per_track=K)`
  registers another count under its own name.
  """
  layout: str = 'folders'
  fma_size: str = ''  # 'small', 'medium' or 'large' for layout 'fma'
  segments_per_track: int = 15


@dataclasses.dataclass(eq=False)
class DerivedConfig(tfds.core.BuilderConfig):
  """A built-in config's clips and split assignment, with the feature set `features`.

  Those with another feature set than 'mel' are `feature_config(base, features)`.
  """
  base: str = ''
  features: str = feature_sets.DEFAULT


@dataclasses.dataclass(eq=False)
class AugmentedConfig(DerivedConfig):
  """A base config whose training split (or `splits`) also holds `copies` augmented copies of each clip.

  Create with `augmented_config`, which names and registers it.
  """
  copies: int = 0
  seed: int = 0
  params: augment.AugmentParams = augment.AugmentParams()
  splits: tuple[str, ...] = ('train',)


class Builder(tfds.core.GeneratorBasedBuilder):
  """GTZAN as float16 log-mel segments, one example per segment: [128, 173] per 2 s (or musicnn's [96, 187] per 3 s)."""

  # Bump VERSION (and add RELEASE_NOTES) whenever features, feature parameters,
  # the clips read or the splits change: a prepared dataset is reused by version.
  # A new derived config (another feature set, an augmentation) is a new name in its own
  # directory and changes no existing config's examples, so it needs no bump: the musicnn
  # feature set came that way, and every 1.2.0 mel dataset and checkpoint stays valid.
  VERSION = tfds.core.Version('1.2.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release.',
      '1.1.0': 'Adds the `copy` feature (0: the clip; 1..K: an augmented copy) and the '
               'augmented training configs of `augmented_config`.',
      '1.2.0': 'Log-mels computed by `tfds_gtzan.melspec` (float32 scipy.fft) instead of librosa: '
               'the same definition, values within 0.01 dB of 1.1.0 before float16 rounding.',
  }
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
      CollectionConfig(
          name='folders', layout='folders',
          description=(
              f'Any labelled collection as folders: manual_dir holds {catalog.FOLDERS_LAYOUT}; each '
              'top folder is a class (at least two), named as the folder. Tracks are split '
              f'stratified and track-disjoint {_FRACTIONS_TEXT} (fixed seed {TRACKS_SEED}). '
              f'{_SEGMENTS_TEXT}')),
      CollectionConfig(
          name='manifest', layout='manifest',
          description=(
              f'Any labelled collection listed in a CSV: {catalog.MANIFEST_LAYOUT}, paths relative to '
              'manual_dir. With a `split` column its split; else stratified '
              f'{_FRACTIONS_TEXT} (fixed seed {TRACKS_SEED}), group-disjoint when a `group` column '
              f'(artist, album) exists (no group in two splits), else track-disjoint. {_SEGMENTS_TEXT}')),
      *(CollectionConfig(
          name=f'fma_{size}', layout='fma', fma_size=size,
          description=(
              f'The Free Music Archive\'s fma_{size} ({count}): manual_dir holds {fma.LAYOUT}. '
              'Labels: track.genre_top; split: FMA\'s own set.split (training/validation/test); group: '
              f'the artist id. Tracks without genre_top are skipped and counted. {_SEGMENTS_TEXT}'))
        for size, count in (('small', '8,000 tracks of 30 s, 8 balanced genres'),
                            ('medium', '25,000 tracks of 30 s, 16 unbalanced genres'),
                            ('large', '106,574 tracks of 30 s, 16 top genres'))),
  ]
  DEFAULT_BUILDER_CONFIG_NAME = 'synthetic'
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Except for the `synthetic` config, extract GTZAN (genres.tar.gz) so that '
      f'manual_dir holds {sources.EXPECTED_LAYOUT}; for `folders`, `manifest` and `fma_*`, '
      'see their descriptions.')

  _spill_dir: str | None = None  # where features wait for TFDS to write them (during a build)
  _listed_class_names: list[str] = ()  # a collection's labels before decoding (during a build)

  def __init__(self, *, file_format: str | None = 'array_record', **kwargs: Any):
    """Like GeneratorBasedBuilder, but stores ArrayRecord by default (random access)."""
    super().__init__(file_format=file_format, **kwargs)

  @tfds.core.utils.classproperty
  @classmethod
  def builder_configs(cls) -> dict[str, tfds.core.BuilderConfig]:
    """The built-in configs, their other feature sets and the augmented ones registered by `augmented_config`."""
    return {**{config.name: config for config in cls.BUILDER_CONFIGS}, **_SEGMENT_CONFIGS, **_FEATURE_CONFIGS,
            **_AUGMENTED_CONFIGS}

  @property
  def base_config_name(self) -> str:
    """The built-in config whose clips and splits this one uses (its own name if built-in)."""
    config = self.builder_config
    return config.base if isinstance(config, DerivedConfig) else config.name

  @property
  def collection(self) -> CollectionConfig | None:
    """The collection config this one reads (itself or its base); None for GTZAN and synthetic."""
    base = self.builder_configs[self.base_config_name]
    return base if isinstance(base, CollectionConfig) else None

  @property
  def feature_set(self) -> feature_sets.FeatureSet:
    """What this config stores for a segment ('mel' for the built-in configs)."""
    config = self.builder_config
    return feature_sets.get(config.features if isinstance(config, DerivedConfig) else None)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    fs = self.feature_set
    metadata = {'feature_set': fs.name, **fs.params}
    if self.collection is not None:  # segments spread over whole tracks, not the first max_segments
      metadata |= {'max_segments': self.collection.segments_per_track, 'placement': 'spread over the whole track',
                   'max_track_seconds': feature_sets.MAX_TRACK_SECONDS}
    if isinstance(config, AugmentedConfig):
      metadata['augment'] = augment.metadata(config.copies, config.seed, config.params) | {
          'splits': list(config.splits)}
    if self.collection is None:
      label = tfds.features.ClassLabel(names=sources.GENRES, doc='Genre.')
      track_doc = 'Clip name, e.g. blues.00000.'
      segment_doc = f'Index of the {fs.segment_seconds:g} s segment in its clip, 0-{fs.max_segments - 1}.'
      collection_features = {}
    else:  # the class names are the collection's own, set when it is built
      label = tfds.features.ClassLabel(doc='Class: the collection\'s label (names sorted).')
      track_doc = ('The file\'s path relative to manual_dir without its extension (FMA: the track id, '
                   'e.g. 000002).')
      segment_doc = (f'Position of the {fs.segment_seconds:g} s segment in its track: it starts '
                     f'{fs.segment_duration:g} s x segment in.')
      collection_features = {'group': tfds.features.Text(
          doc="The track's group (the manifest's group column, FMA's artist id; '' when none): "
              'no group is in two splits.')}
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'mel': tfds.features.Tensor(
                shape=fs.shape, dtype=feature_sets.STORAGE_DTYPE,
                encoding=tfds.features.Encoding.BYTES, doc=fs.doc),
            'label': label,
            'track': tfds.features.Text(doc=track_doc),
            'segment': tfds.features.Scalar(np.int32, doc=segment_doc),
            'copy': tfds.features.Scalar(
                np.int32, doc='0: the clip as recorded; 1..K: augmented copy k of it (training '
                              'split of augmented configs only).'),
            **collection_features,
        }),
        supervised_keys=('mel', 'label'),
        homepage='http://marsyas.info/downloads/datasets.html',
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(metadata),
    )

  def _download_and_prepare(self, dl_manager: tfds.download.DownloadManager,
                            download_config: tfds.download.DownloadConfig | None = None) -> None:
    """Writes each split shard by shard, straight from its examples, as `tfds.core.ShardBasedBuilder` does.

    GeneratorBasedBuilder's writer holds a split's serialized examples in memory to shuffle them
    and, past 1 GB, spills them through TensorFlow, which this project does not install: a
    split over 1 GB could not be built. Here examples go to ArrayRecord files in their sorted
    order (readers take them in that order anyway; `tfds_gtzan.data` sorts), SHARD_BYTES a
    file, while the features wait on disk (`featurize.Spill`, in the preparation's own
    temporary folder, removed when the splits are written), so memory stays bounded however
    large the collection.
    """
    split_builder = tfds.core.split_builder.SplitBuilder(
        split_dict=self.info.splits, features=self.info.features, dataset_size=self.info.dataset_size,
        beam_options=None, beam_runner=None, example_writer=self._example_writer(), ignore_duplicates=None,
        max_examples_per_split=None, shard_config=None)
    self._spill_dir = os.path.join(os.fspath(self.data_dir), '.features')
    os.makedirs(self._spill_dir, exist_ok=True)
    try:
      examples = self._split_examples(dl_manager)
      per_shard = max(1, SHARD_BYTES // (int(np.prod(self.feature_set.shape)) * 2))
      futures = [split_builder.submit_shard_based_generation(
          split_name=split,
          example_gen_per_shard=[functools.partial(self._generate_examples, split_examples[i:i + per_shard])
                                 for i in range(0, len(split_examples), per_shard)],
          filename_template=self._get_filename_template(split_name=split))
                 for split, split_examples in examples.items()]
      self.info.set_splits(tfds.core.SplitDict([future.result() for future in futures]))
    finally:
      shutil.rmtree(self._spill_dir, ignore_errors=True)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    """GeneratorBasedBuilder's hook, for completeness: `_download_and_prepare` writes `_split_examples`."""
    return {split: self._generate_examples(examples) for split, examples in self._split_examples(dl_manager).items()}

  def _split_examples(self, dl_manager: tfds.download.DownloadManager) -> dict[str, list[Example]]:
    """Every split's examples, sorted by (track, copy, segment); sets the summary, source and class names."""
    clips, summary, source = self._find_clips(dl_manager)
    results = featurize.featurize(clips, spill_dir=self._spill_dir, **self._feature_set_kwargs())
    if self.collection is not None:
      results = self._labelled(results, summary, source)
    examples = self._assign_splits([r for r in results if r.mel is not None])
    if isinstance(self.builder_config, AugmentedConfig):
      for split in self.builder_config.splits:
        examples[split] += self._augmented_examples(examples[split])
    summary = _summarize(summary, results, examples)
    if self.collection is not None:
      summary |= _collection_summary(examples, self.info.features['label'].names)
    self.info.metadata['summary'] = summary
    self.info.metadata['source'] = source
    self.info.metadata['class_names'] = list(self.info.features['label'].names)
    logging.info('gtzan_mel/%s: %d clips read, %d skipped, segments %s', self.builder_config.name,
                 summary['clips_read'], len(summary['clips_skipped']), summary['segments'])
    empty = [split for split, split_examples in examples.items() if not split_examples]
    if empty:  # TFDS cannot write an empty split.
      raise sources.ManualDirError(
          f'manual_dir {_manual_dir(dl_manager)} gives no examples for the {" and ".join(empty)} '
          f'split of gtzan_mel/{self.builder_config.name} ({summary["clips_read"]} clips read, '
          f'{len(summary["clips_skipped"])} skipped, {len(summary["too_short"])} shorter than '
          f'{self.feature_set.segment_seconds:g} s).')
    return examples

  def _generate_examples(self, examples: Sequence[Example]) -> Iterator[tuple[str, dict[str, Any]]]:
    with_group = self.collection is not None
    for clip, segment, mel, copy in examples:
      key = f'{clip.track}_{segment:02d}' + (f'_aug{copy}' if copy else '')
      example = {'mel': np.asarray(mel), 'label': clip.label, 'track': clip.track, 'segment': segment,
                 'copy': copy}
      yield key, (example | {'group': clip.group} if with_group else example)

  def _labelled(self, results: list[featurize.ClipFeatures], summary: dict[str, Any], source: dict[str, Any]
                ) -> list[featurize.ClipFeatures]:
    """Sets the class names to the labels that kept a segment, renumbering the clips' labels.

    A label none of whose files gave a segment (unreadable, too short) is dropped and named
    in the summary (`labels_without_segments`); fewer than two labels left is a one-line error.
    """
    listed = self._listed_class_names
    kept = sorted({listed[r.clip.label] for r in results if r.mel is not None and len(r.mel)})
    summary['labels_without_segments'] = sorted(set(listed) - set(kept))
    if summary['labels_without_segments']:
      logging.warning('No segment from any file of the labels %s: left out.', summary['labels_without_segments'])
    if len(kept) < 2:
      raise sources.ManualDirError(
          f'manual_dir {source["manual_dir"]} gives segments of {len(kept)} class'
          f'{"" if len(kept) == 1 else "es"} ({", ".join(kept) or "none"}; '
          f'{sum(r.error is None for r in results)} files read, {sum(r.error is not None for r in results)} '
          'unreadable): a classifier needs at least two.')
    self.info.features['label'].names = kept
    index = {name: i for i, name in enumerate(kept)}
    return [dataclasses.replace(r, clip=dataclasses.replace(r.clip, label=index.get(listed[r.clip.label], -1)))
            for r in results]

  def _augmented_examples(self, train: Sequence[Example]) -> list[Example]:
    """The augmented copies of the training segments, sorted by (track, copy, segment).

    Whole clips are augmented; a copy's segment i is kept when the clip's segment i
    is a training segment (all of them, except for the `paper` split) and the copy has
    one: a copy stretched shorter than the clip has fewer segments (none is padding).
    """
    config = self.builder_config
    train_segments = collections.defaultdict(set)
    clips = {}
    for clip, segment, _, _ in train:
      train_segments[clip.track].add(segment)
      clips[clip.track] = clip
    features = featurize.featurize_augmented(
        [clips[track] for track in sorted(clips)], copies=config.copies, seed=config.seed,
        params=config.params, positions={track: sorted(s) for track, s in train_segments.items()},
        spill_dir=self._spill_dir, **self._feature_set_kwargs())
    return [(f.clip, f.position(i), f.mel[i], f.copy)
            for clip_copies in features for f in clip_copies
            for i in range(len(f.mel)) if f.position(i) in train_segments[f.clip.track]]

  def _feature_set_kwargs(self) -> dict[str, Any]:
    """featurize's feature_set argument where it is not its default, 'mel'."""
    fs = self.feature_set
    return {} if fs.name == feature_sets.DEFAULT else {'feature_set': fs}

  def _find_clips(self, dl_manager: tfds.download.DownloadManager
                  ) -> tuple[list[sources.Clip], dict[str, Any], dict[str, Any]]:
    """The clips to featurise, a summary of the search, and the provenance record of the build."""
    if self.base_config_name == 'synthetic':
      summary = {'clips_skipped': [], 'unknown_genre_files': 0, 'listed_missing': 0, 'unlisted_clips': 0}
      return sources.synthetic_clips(), summary, synthetic_source()
    clips, summary, source, self._listed_class_names = self._search(_manual_dir(dl_manager))
    return clips, summary, source

  def _search(self, manual_dir: epath.Path | str | os.PathLike[str]
              ) -> tuple[list[sources.AudioFileClip], dict[str, Any], dict[str, Any], list[str]]:
    """The clips manual_dir gives this config, the summary of the search, its provenance record and,
    for a collection, its labels before decoding: what a build reads, and what `source_record` compares."""
    collection = self.collection
    if collection is None:
      clips, summary = self._gtzan_clips(manual_dir, {'clips_skipped': [], 'unknown_genre_files': 0,
                                                      'listed_missing': 0, 'unlisted_clips': 0})
      return clips, summary, catalog.provenance(manual_dir, 'gtzan', sources.gtzan_entries(clips)), []
    listing = self.listing(manual_dir)
    summary = {'clips_skipped': list(listing.skipped), **listing.notes}
    if listing.has_splits and listing.has_groups:
      summary['groups_in_several_splits'] = len(catalog.groups_in_several_splits(listing.entries))
    clips = sources.collection_clips(listing.entries, listing.class_names, collection.segments_per_track)
    return (clips, summary, catalog.provenance(manual_dir, collection.layout, listing.entries, listing.index),
            listing.class_names)

  def listing(self, manual_dir: str | os.PathLike[str]) -> catalog.Listing:
    """A collection config's entries in `manual_dir` (`catalog`, `fma`), before any file is decoded."""
    collection = self.collection
    if collection.layout == 'folders':
      return catalog.folders(manual_dir)
    if collection.layout == 'manifest':
      return catalog.manifest(manual_dir)
    return fma.listing(manual_dir, collection.fma_size)

  def source_record(self, manual_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The provenance record a build from `manual_dir` would keep (`metadata['source']`), without decoding.

    `tfds_gtzan.data.get_builder` compares it with a prepared dataset's to refuse stale data.
    None for `synthetic`, which reads no manual_dir.
    """
    return None if self.base_config_name == 'synthetic' else self._search(manual_dir)[2]

  def _gtzan_clips(self, manual_dir: epath.Path | str, summary: dict[str, Any]
                   ) -> tuple[list[sources.AudioFileClip], dict[str, Any]]:
    """GTZAN's clips in manual_dir that this config reads, and the summary of the search."""
    found = sources.find_clips(manual_dir)
    summary['clips_skipped'] = [{'file': c.file, 'reason': 'another file has the same track name'}
                                for c in found.duplicates]
    summary['unknown_genre_files'] = len(found.unknown_genre_files)
    if found.unknown_genre_files:
      logging.warning('Ignoring %d files outside the GTZAN genre folders, e.g. %s',
                      len(found.unknown_genre_files), found.unknown_genre_files[0])
    if self.base_config_name != 'fault_filtered':
      return found.clips, summary
    listed = splits.fault_filtered_tracks()
    clips = [c for c in found.clips if c.track in listed]
    summary['unlisted_clips'] = len(found.clips) - len(clips)
    summary['listed_missing'] = len(listed) - len(clips)
    return clips, summary

  def _assign_splits(self, results: Sequence[featurize.ClipFeatures]) -> dict[str, list[Example]]:
    """Examples per split, each list sorted by (track, segment), from the clips that were read.

    The track-disjoint configs split the clips that have a 2 s mel segment, whatever the
    feature set, so that every feature set puts each track in the same split (a clip of
    2-3 s has no musicnn patch: it is in no split's examples, but moves no other track).
    """
    segments = [(r.clip.track, i) for r in results for i in range(len(r.mel))]
    if self.base_config_name == 'paper':
      segment_split = splits.shuffled_split(segments, seed=PAPER_SEED, fractions=PAPER_FRACTIONS)
    else:
      track_split = self._track_splits(
          [r.clip for r in results if r.seconds >= audio.SEGMENT_SECONDS or len(r.mel)])
      segment_split = {(track, i): track_split[track] for track, i in segments}
    by_track = {r.clip.track: r for r in results}
    examples = {split: [] for split in splits.SPLITS}
    for track, i in sorted(segments):
      r = by_track[track]
      examples[segment_split[track, i]].append((r.clip, r.position(i), r.mel[i], 0))
    return examples

  def _track_splits(self, clips: Sequence[sources.Clip]) -> dict[str, str]:
    """{track: split} for the track-disjoint configs.

    A collection's own split where it has one (a manifest's split column, FMA's set.split);
    else stratified by label, group-disjoint where the tracks have groups (`splits.group_split`),
    track-disjoint otherwise; fixed seed.
    """
    if self.base_config_name == 'synthetic':
      return {clip.track: synthetic.split_of(clip.index) for clip in clips}
    if self.base_config_name == 'fault_filtered':
      return splits.fault_filtered_tracks()
    if any(clip.split for clip in clips):
      return {clip.track: clip.split for clip in clips}
    if any(clip.group for clip in clips):
      return splits.group_split([(c.track, c.label, c.group) for c in clips], seed=TRACKS_SEED,
                                fractions=TRACKS_FRACTIONS)
    tracks_by_genre = collections.defaultdict(list)
    for clip in clips:
      tracks_by_genre[clip.label].append(clip.track)
    return splits.stratified_split(tracks_by_genre, seed=TRACKS_SEED, fractions=TRACKS_FRACTIONS)


def _feature_config(base: tfds.core.BuilderConfig, fs: feature_sets.FeatureSet) -> DerivedConfig:
  return DerivedConfig(
      name=f'{base.name}_{fs.name}', base=base.name, features=fs.name,
      description=(f'gtzan_mel/{base.name} ({base.description}) with the {fs.name!r} feature set '
                   f'(tfds_gtzan.feature_sets): {fs.doc} The same clips as gtzan_mel/{base.name}, split as it '
                   f'splits them. Parameters: {json.dumps(dict(fs.params), sort_keys=True)}.'))


# '<base>_<features>' for every built-in config and every feature set but 'mel'; always registered.
_FEATURE_CONFIGS: dict[str, DerivedConfig] = {
    config.name: config for config in (
        _feature_config(base, fs) for fs in feature_sets.FEATURE_SETS.values()
        if fs.name != feature_sets.DEFAULT for base in Builder.BUILDER_CONFIGS)}
_AUGMENTED_CONFIGS: dict[str, AugmentedConfig] = {}
_SEGMENT_CONFIGS: dict[str, CollectionConfig] = {}  # collections with another segments_per_track


def _built_in(base: str, what: str) -> tfds.core.BuilderConfig:
  """A built-in config, or a collection's `collection_config` registered in this process."""
  base = base.removeprefix('gtzan_mel/')
  built_in = {config.name: config for config in Builder.BUILDER_CONFIGS} | _SEGMENT_CONFIGS
  if base not in built_in:
    raise ValueError(f'Unknown gtzan_mel config {base!r} {what}; one of {", ".join(built_in)}.')
  return built_in[base]


def feature_config(base: str, features: str = feature_sets.DEFAULT) -> tfds.core.BuilderConfig:
  """The config of built-in config `base` ('tracks' or 'gtzan_mel/tracks') with feature set `features`.

  'mel': `base` itself; 'musicnn': '<base>_musicnn' (e.g. tracks_musicnn). ValueError, naming
  the choices, for an unknown base or feature set.
  """
  config = _built_in(base, f'for feature set {features!r}')
  fs = feature_sets.get(features)
  if fs.name == feature_sets.DEFAULT:
    return config
  name = f'{config.name}_{fs.name}'
  if name not in _FEATURE_CONFIGS:  # a collection_config's: registered with it, on demand
    _FEATURE_CONFIGS[name] = _feature_config(config, fs)
  return _FEATURE_CONFIGS[name]


def collection_config(base: str, segments_per_track: int) -> CollectionConfig:
  """A collection config (`folders`, `manifest`, `fma_*`) with at most `segments_per_track` segments per track.

  The built-in config itself for its own count (15); another count is '<base>_seg<K>'
  (e.g. folders_seg40: a 4-minute song gives 40 segments), registered in this process as
  `augmented_config` registers its configs, so that `tfds.builder`, `feature_config` and
  `augmented_config` take it. ValueError for another base or a count below 1.
  """
  config = _built_in(base, 'for segments_per_track')
  if not isinstance(config, CollectionConfig):
    raise ValueError(f'segments_per_track is a collection config\'s (folders, manifest, fma_*), not {base!r}\'s: '
                     'GTZAN\'s configs take the first 14 segments of each 30 s clip.')
  if not isinstance(segments_per_track, int) or isinstance(segments_per_track, bool) or segments_per_track < 1:
    raise ValueError(f'segments_per_track must be an int >= 1, got {segments_per_track!r}.')
  root = next(c for c in Builder.BUILDER_CONFIGS if c.name == config.name.split('_seg')[0])
  if segments_per_track == root.segments_per_track:
    return root
  name = f'{root.name}_seg{segments_per_track}'
  if name not in _SEGMENT_CONFIGS:
    _SEGMENT_CONFIGS[name] = dataclasses.replace(
        root, name=name, segments_per_track=segments_per_track,
        description=root.description.replace(f'at most {root.segments_per_track} segments',
                                             f'at most {segments_per_track} segments'))
  return _SEGMENT_CONFIGS[name]


def augmented_config(base: str, *, copies: int, seed: int = 0,
                     params: augment.AugmentParams | None = None, splits: Sequence[str] = ('train',),
                     features: str = feature_sets.DEFAULT, **param_overrides: float) -> AugmentedConfig:
  """The config `base` plus `copies` augmented copies of every training clip, registered.

  With `splits` = all three (what cross-validation pools), the clips of every split get
  their copies, the same ones a train-only build makes for its training clips; such a
  config is named '<base>_aug<K>all_<hash>'.

  Args:
    base: a built-in config name ('synthetic', 'fault_filtered', 'tracks', 'paper'),
      optionally as 'gtzan_mel/<name>'.
    copies: K >= 1 augmented copies per training clip.
    seed: augmentation seed; copy k of a track depends only on (seed, track, k, params).
    params: augmentation parameters (default `augment.AugmentParams()`).
    splits: the splits whose clips get copies; 'train' among them.
    features: the feature set (`tfds_gtzan.feature_sets`) of originals and copies. Copies
      are augmented at 22050 Hz and then resampled to the set's rate (`featurize`).
    **param_overrides: fields of `AugmentParams` to override, e.g. noise_prob=1.0.

  Returns:
    The config, named '<base>_aug<K>_<8 hex digits>' ('<base>_<features>_aug<K>_<8 hex digits>'
    for a feature set other than 'mel', e.g. tracks_musicnn_aug2_<hash>) from a hash of all of
    the above, so equal arguments give the same name (and reuse a prepared dataset) and
    different ones a different directory. After this call
    `tfds.builder(f'gtzan_mel/{config.name}')` works in this process.
  """
  base_config = _built_in(base, 'to augment')
  base = base_config.name
  fs = feature_sets.get(features)
  if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
    raise ValueError(f'copies must be an int >= 1, got {copies!r}.')
  if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
    raise ValueError(f'seed must be an int >= 0, got {seed!r}.')
  splits = tuple(s for s in ('train', 'validation', 'test') if s in splits)
  if not splits or 'train' not in splits:
    raise ValueError(f'splits must include train (of train, validation, test), got {splits!r}.')
  params = dataclasses.replace(params or augment.AugmentParams(), **param_overrides)
  record = augment.metadata(copies, seed, params) | {'base': base}
  if splits != ('train',):  # train-only names stay those of the configs built before `splits`
    record['splits'] = list(splits)
  if fs.name != feature_sets.DEFAULT:  # mel names stay those of the configs built before feature sets
    record['features'] = fs.name
  digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]
  stem = base if fs.name == feature_sets.DEFAULT else f'{base}_{fs.name}'
  name = f'{stem}_aug{copies}{"all" if len(splits) == 3 else "".join(s[0] for s in splits)}_{digest}'
  if splits == ('train',):
    name = f'{stem}_aug{copies}_{digest}'
  if name not in _AUGMENTED_CONFIGS:
    base_description = base_config.description
    what = augment.describe(copies, seed, params)
    where = ('Its training split also holds' if splits == ('train',)
             else f'Its {", ".join(splits)} splits also hold')
    what = what if splits == ('train',) else what.replace('every training clip', 'every clip')
    same = 'Validation and test are those' if splits == ('train',) else 'The clips and split assignment are those'
    features_text = ('' if fs.name == feature_sets.DEFAULT else
                     f' Feature set {fs.name!r} (as gtzan_mel/{stem}); copies are augmented at 22050 Hz, '
                     f'then resampled to {fs.sample_rate} Hz.')
    _AUGMENTED_CONFIGS[name] = AugmentedConfig(
        name=name, base=base, features=fs.name, copies=copies, seed=seed, params=params, splits=splits,
        description=(f'gtzan_mel/{base} ({base_description}) {where} '
                     f'{what} {same} of gtzan_mel/{stem}.{features_text} '
                     f'Parameters: {json.dumps(record, sort_keys=True)}.'))
  return _AUGMENTED_CONFIGS[name]


def _manual_dir(dl_manager: tfds.download.DownloadManager) -> epath.Path:
  """The manual_dir as given (default: <data_dir>/downloads/manual), unchecked.

  Not `dl_manager.manual_dir`: for a missing or empty folder that raises a
  multi-line AssertionError which does not name the path.
  """
  return dl_manager._manual_dir  # pylint: disable=protected-access


def synthetic_source() -> dict[str, Any]:
  """The provenance record of a synthetic build: the generator, no files."""
  return {'kind': 'synthetic', 'manual_dir': None, 'index': None, 'num_files': 0, 'bytes': 0,
          'digest': f'synthetic-{synthetic.CLIPS_PER_GENRE}', 'files': []}


def _collection_summary(examples: dict[str, list[Example]], class_names: Sequence[str]) -> dict[str, Any]:
  """Tracks per class and split, and groups per split: what a user checks first of a new collection."""
  tracks = {split: collections.Counter() for split in examples}
  groups = {split: set() for split in examples}
  for split, split_examples in examples.items():
    seen = set()
    for clip, _, _, copy in split_examples:
      if not copy and clip.track not in seen:
        seen.add(clip.track)
        tracks[split][class_names[clip.label]] += 1
        if clip.group:
          groups[split].add(clip.group)
  return {'tracks': {name: {split: tracks[split][name] for split in examples} for name in class_names},
          'groups': {split: len(g) for split, g in groups.items()}}


def _summarize(search: dict[str, Any], results: Sequence[featurize.ClipFeatures],
               examples: dict[str, list[Example]]) -> dict[str, Any]:
  """JSON-serialisable account of what was read, skipped and written."""
  return {
      'clips_read': sum(r.error is None for r in results),
      'clips_skipped': search['clips_skipped'] + [
          {'file': r.clip.file, 'reason': r.error} for r in results if r.error],
      'too_short': [{'file': r.clip.file, 'seconds': round(r.seconds, 3)}
                    for r in results if r.mel is not None and not len(r.mel)],
      **{k: v for k, v in search.items() if k != 'clips_skipped'},
      'segments': {split: len(split_examples) for split, split_examples in examples.items()},
      'augmented_segments': sum(copy > 0 for split_examples in examples.values()
                                for _, _, _, copy in split_examples),
  }
