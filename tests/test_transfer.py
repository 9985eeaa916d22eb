"""The musicnn transfer models (`gtzan_jax.pretrained.transfer`) through the trainer.

The network is randomly initialised here (`with_pretrained` patched out) so that no test but
the last needs musicnn's weights; that one skips, saying so, where the wheel cannot be had.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtzan_jax import evaluation, models, train
from gtzan_jax.pretrained import transfer
from tfds_gtzan.gtzan_mel import sources

GENRES = list(sources.GENRES)
SOURCE = {'kind': 'arrays', 'description': 'fake patches', 'class_names': GENRES}


def _patches(n: int, seed: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  label = ((np.arange(n) // 2) % 10).astype(np.int32)
  mel = rng.uniform(0, 3, (n, 96, 187))
  mel[np.arange(n), label * 8] += 2.0
  return {'mel': mel.astype(np.float16), 'label': label,
          'track': np.array([f'fake.{i // 2:05d}' for i in range(n)]), 'segment': (np.arange(n) % 2).astype(np.int32)}


@pytest.fixture
def probe_config():
  from configs import musicnn_probe
  config = musicnn_probe.get_config()
  config.batch_size = 16
  config.num_epochs = 2
  config.log_every_steps = 1
  return config


@pytest.fixture
def no_download(monkeypatch):
  monkeypatch.setattr(transfer, 'with_pretrained', lambda variables, model: variables)


def test_the_tag_prior_names_gtzan_genres_by_their_msd_tags():
  prior = transfer.tag_prior_matrix(GENRES)
  assert prior.shape == (50, 10)
  tags_of = {g: {transfer.MSD_TAGS[t] for t in np.flatnonzero(prior[:, c])} for c, g in enumerate(GENRES)}
  assert tags_of['jazz'] == {'jazz'} and 'classic rock' in tags_of['rock'] and tags_of['metal'] == {
      'metal', 'heavy metal'}
  assert not tags_of['disco'] and not tags_of['reggae']
  # Any label set: names match case- and punctuation-blind; unknown names get no tag.
  assert transfer.tag_prior_matrix(['Hip-Hop', 'Jazz', 'polka']).sum(0).tolist() == [1, 1, 0]


def test_head_on_cached_embeddings_equals_the_whole_network(probe_config):
  model = models.create_model(probe_config, class_names=GENRES)
  mel = jnp.asarray(_patches(4, 0)['mel'], jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), mel, train=False)
  whole = model.apply(variables, mel, train=False)
  embeddings = model.apply(variables, mel, method=transfer.MusicnnClassifier.embed)
  assert embeddings.shape == (4, 50 + 1506)
  np.testing.assert_allclose(model.apply(variables, embeddings, train=False), whole, atol=1e-6)
  # The outputs are log-probabilities: the mixture of two distributions.
  np.testing.assert_allclose(jax.nn.logsumexp(whole, axis=-1), 0.0, atol=1e-5)


def test_without_any_tagged_class_the_probe_alone_decides(probe_config):
  model = models.create_model(probe_config, class_names=['polka', 'waltz'])
  mel = jnp.asarray(_patches(2, 1)['mel'], jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), mel, train=False)
  logits = model.apply(variables, mel, train=False)
  assert logits.shape == (2, 2)
  np.testing.assert_allclose(jax.nn.logsumexp(logits, axis=-1), 0.0, atol=1e-5)


def test_a_musicnn_model_on_mel_features_is_a_config_error(probe_config):
  probe_config.features = 'mel'
  with pytest.raises(ValueError, match=r"features='mel' \('musicnn' for model='musicnn'\)"):
    train.check_config(probe_config)


def test_probe_trains_the_head_only_through_main_training(probe_config, no_download, tmp_path):
  datasets = {'train': _patches(32, 0), 'validation': _patches(16, 1), 'test': _patches(16, 2)}
  workdir = str(tmp_path / 'probe')
  model = models.create_model(probe_config, class_names=GENRES)
  initial = train.create_train_state(jax.random.PRNGKey(probe_config.seed), probe_config, model, 2)
  results = train.train_and_evaluate(probe_config, workdir, datasets, jax.devices()[:1], data_source=SOURCE)
  assert results['step'] == 4 and 0 <= results['test']['track_accuracy'] <= 1
  assert len(os.listdir(os.path.join(workdir, 'embeddings'))) == 2  # train and validation, computed once
  trained = evaluation.load_trained(workdir)
  params = jax.device_get(trained.state.params)
  for a, b in zip(jax.tree.leaves(params['net']), jax.tree.leaves(initial.params['net'])):
    np.testing.assert_array_equal(a, b)  # the network is frozen
  assert not np.allclose(params['head']['kernel'], initial.params['head']['kernel'])
  stats = jax.device_get(trained.state.batch_stats)['embedding_norm']
  assert np.all(stats['var'] >= 0) and np.any(stats['mean'] != 0)  # set from the training embeddings
  # Evaluation runs the whole network on the patches, and gives what the trainer reported.
  scores = trained.evaluate(datasets['test'])
  assert scores['segment']['accuracy'] == pytest.approx(results['test']['accuracy'])
  # The probe was validated on cached embeddings: the same figures as the whole network gives.
  validation = trained.evaluate(datasets['validation'])['segment']
  assert validation['accuracy'] == pytest.approx(results['validation']['accuracy'])
  assert validation['loss'] == pytest.approx(results['validation']['loss'], rel=1e-4)
  # A checkpoint of one feature set refuses segments of the other, in one line.
  mel_segments = np.zeros((2, 128, 173), np.float16)
  with pytest.raises(ValueError, match=r"needs 'musicnn' features shaped \[96, 187\]; the segments given "
                                       r'are \[128, 173\]'):
    trained.log_probs(mel_segments)
  # Resuming the finished run recomputes nothing and reuses the cached embeddings.
  again = train.train_and_evaluate(probe_config, workdir, datasets, jax.devices()[:1], data_source=SOURCE)
  assert again['steps_trained_this_run'] == 0
  assert again['test']['accuracy'] == pytest.approx(results['test']['accuracy'])
  # Another run can start from this one's weights (linear probe, then fine-tune).
  probe_config.musicnn.init_from = workdir
  probe_config.learning_rate = 1e-12
  probe_config.num_epochs = 1
  train.train_and_evaluate(probe_config, str(tmp_path / 'from_probe'), datasets, jax.devices()[:1], data_source=SOURCE)
  started = jax.device_get(evaluation.load_trained(str(tmp_path / 'from_probe')).state.params['head'])
  np.testing.assert_allclose(started['kernel'], params['head']['kernel'], atol=1e-6)
  with pytest.raises(ValueError, match=r'init_from=.* was trained on the classes'):
    train.train_and_evaluate(probe_config, str(tmp_path / 'other_classes'), datasets, jax.devices()[:1],
                             data_source={'kind': 'arrays', 'description': 'x', 'class_names': GENRES[::-1]})


@pytest.mark.multidevice
def test_probe_over_eight_devices_with_pmap_matches_one_device(probe_config, no_download, tmp_path):
  probe_config.num_epochs = 1
  datasets = {'train': _patches(32, 0), 'validation': _patches(16, 1), 'test': _patches(16, 2)}
  one = train.train_and_evaluate(probe_config, str(tmp_path / 'one'), datasets, jax.devices()[:1], data_source=SOURCE)
  probe_config.parallelism = 'pmap'
  eight = train.train_and_evaluate(probe_config, str(tmp_path / 'eight'), datasets, jax.devices(), data_source=SOURCE)
  assert eight['device_count'] == 8
  assert eight['test']['loss'] == pytest.approx(one['test']['loss'], rel=1e-5)
  head = [jax.device_get(evaluation.load_trained(str(tmp_path / w)).state.params['head']) for w in ('one', 'eight')]
  np.testing.assert_allclose(head[1]['kernel'], head[0]['kernel'], atol=1e-5)


def test_fine_tuning_moves_the_network_at_its_scaled_rate(probe_config):
  """One train step (on short patches: compiling the network's gradient is what costs here)."""
  probe_config.musicnn.train_backbone = True
  probe_config.musicnn.backbone_lr_scale = 0.1
  model = models.create_model(probe_config, class_names=GENRES)
  state = train.create_train_state(jax.random.PRNGKey(0), probe_config, model, 1, pretrained=False)
  data = _patches(4, 0)
  batch = {'mel': jnp.asarray(data['mel'][:, :, :40]), 'label': jnp.asarray(data['label'])}
  new_state, _ = jax.jit(lambda s, b: train.train_step(s, b, axis_name=None))(state, batch)
  # Adam's first step moves every weight that has a gradient by about its learning rate.
  net_step = np.abs(new_state.params['net']['dense']['kernel'] - state.params['net']['dense']['kernel']).max()
  head_step = np.abs(new_state.params['head']['kernel'] - state.params['head']['kernel']).max()
  lr = probe_config.learning_rate
  assert net_step == pytest.approx(0.1 * lr, rel=0.05) and head_step == pytest.approx(lr, rel=0.05)
  # Frozen BatchNorm: the network's statistics stay musicnn's.
  for a, b in zip(jax.tree.leaves(new_state.batch_stats['net']), jax.tree.leaves(state.batch_stats['net'])):
    np.testing.assert_array_equal(a, b)


def test_the_network_starts_from_musicnns_weights(probe_config):
  from gtzan_jax.pretrained import musicnn, weights
  try:
    tensors = weights.load('MSD_musicnn')
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f'the musicnn wheel could not be had from the package registry: {e}')
  expected = musicnn.from_checkpoint(tensors, 'MSD_musicnn')
  model = models.create_model(probe_config, class_names=GENRES)
  state = train.create_train_state(jax.random.PRNGKey(0), probe_config, model, 1)
  for a, b in zip(jax.tree.leaves(state.params['net']), jax.tree.leaves(expected['params'])):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(state.batch_stats['net']), jax.tree.leaves(expected['batch_stats'])):
    np.testing.assert_array_equal(a, b)
