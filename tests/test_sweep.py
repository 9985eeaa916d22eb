"""sweep: parsing --sweep, typed config values, and a batch-size sweep: outputs, reuse, divergence."""

import csv
import json

import jax
import pytest

from gtzan_jax import sweep, train


def test_parse_sweep():
  assert sweep.parse_sweep('learning_rate=1e-4, 3e-4,1e-3') == ('learning_rate', ['1e-4', '3e-4', '1e-3'])
  for bad in ('learning_rate', 'learning_rate=', '=1,2'):
    with pytest.raises(ValueError, match='key=value1'):
      sweep.parse_sweep(bad)


def test_values_take_the_type_of_their_field(tiny_config):
  assert sweep.with_value(tiny_config, 'learning_rate', '3e-4').learning_rate == 3e-4
  config = sweep.with_value(tiny_config, 'batch_size', '32')
  assert config.batch_size == 32 and isinstance(config.batch_size, int) and tiny_config.batch_size == 16
  assert sweep.with_value(tiny_config, 'vgg.dropout_rate', '0').vgg.dropout_rate == 0.0
  assert sweep.with_value(tiny_config, 'lr_schedule', 'cosine').lr_schedule == 'cosine'
  for key, text, match in [('batch_size', '1e-3', 'Cannot set batch_size'), ('no_such_field', '1', 'no field'),
                           ('vgg.widths', '8', 'only number'), ('dataset', 'gtzan_mel/tracks', 'one dataset')]:
    with pytest.raises(ValueError, match=match):
      sweep.with_value(tiny_config, key, text)


def test_batch_size_sweep_writes_csv_md_and_curves(tiny_config, fake_datasets, tmp_path, monkeypatch):
  tiny_config.vgg.widths = (4,)
  devices = jax.devices()[:1]
  rows = sweep.run_sweep(tiny_config, str(tmp_path), 'batch_size', ['8', '16'],
                         datasets=fake_datasets, devices=devices)
  assert [row['batch_size'] for row in rows] == ['8', '16'] and all(row['status'] == 'done' for row in rows)
  for row in rows:
    with open(tmp_path / row['run'] / 'results.json') as f:
      results = json.load(f)
    assert row['test_accuracy'] == results['test']['accuracy'] and row['epochs'] == 2
    assert row['test_track_accuracy'] == results['test']['track_accuracy']
    assert row['examples_per_s'] == results['train_examples_per_s']
    assert row['best_epoch'] in (1, 2) and row['best_validation_accuracy'] >= row['validation_accuracy']
  assert (tmp_path / 'batch_size=8' / 'results.json').exists()

  with open(tmp_path / 'sweep.csv') as f:
    table = list(csv.DictReader(f))
  assert [r['batch_size'] for r in table] == ['8', '16']
  assert float(table[1]['validation_accuracy']) == pytest.approx(rows[1]['validation_accuracy'])
  markdown = (tmp_path / 'sweep.md').read_text()
  assert '# Sweep over batch_size' in markdown and '| 16 | done |' in markdown and 'sweep.png' in markdown
  assert (tmp_path / 'sweep.png').read_bytes()[:4] == b'\x89PNG'

  # Again with one more value: the finished runs are reused (their results.json holds their config),
  # and a run that diverges is reported as such instead of stopping the sweep.
  def diverge(*args, **kwargs):
    raise train.NonFiniteLossError('loss became nan')

  monkeypatch.setattr(train, 'train_and_evaluate', diverge)
  again = sweep.run_sweep(tiny_config, str(tmp_path), 'batch_size', ['8', '16', '32'],
                          datasets=fake_datasets, devices=devices)
  assert again[:2] == rows and again[2]['status'] == 'diverged' and again[2]['test_accuracy'] is None
  assert '| 32 | diverged |' in (tmp_path / 'sweep.md').read_text()


def test_a_sweep_over_an_audio_key_trains_each_value_on_its_own_data(tiny_config, tmp_path, monkeypatch):
  """augment.audio_copies=0,1 must not train both runs on the base data (results.json records the value)."""
  from gtzan_jax import input_pipeline
  loaded, trained_on = [], []

  def load(config):
    name = input_pipeline.dataset_name(config)
    loaded.append(name)
    return {'name': name}, {'kind': 'tfds', 'name': name, 'version': 'x'}

  def fake_train(config, workdir, datasets, devices=None, *, data_source=None):
    trained_on.append((config.augment.audio_copies, datasets['name'], data_source['name']))
    raise train.NonFiniteLossError('stop here')  # the sweep records the run as diverged and goes on

  monkeypatch.setattr(input_pipeline, 'load_datasets_with_source', load)
  monkeypatch.setattr(train, 'train_and_evaluate', fake_train)
  tiny_config.dataset = 'gtzan_mel/tracks'
  sweep.run_sweep(tiny_config, str(tmp_path), 'augment.audio_copies', ['0', '1', '1'])
  assert loaded[0] == 'gtzan_mel/tracks' and loaded[1].startswith('gtzan_mel/tracks_aug1_')
  assert len(loaded) == 2  # the two runs of one value share its data
  assert [(copies, name) for copies, name, _ in trained_on] == [(0, loaded[0]), (1, loaded[1]), (1, loaded[1])]
  assert all(name == source for _, name, source in trained_on)
  with pytest.raises(ValueError, match='changes the data each run reads'):
    sweep.run_sweep(tiny_config, str(tmp_path), 'augment.audio_copies', ['0', '1'], datasets={'name': 'x'})
