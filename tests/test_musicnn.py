"""Our Flax musicnn networks (MSD and MTT, musicnn and vgg) give musicnn's own TensorFlow outputs (to 1e-4) on a fixed input.

The reference (tests/data/musicnn_reference.npz) was made once by scripts/musicnn_reference.py
in a throwaway environment with TensorFlow 2.21; this test always checks it, and reruns that
script where TensorFlow is installed. The weights come from the musicnn wheel, which
`weights.load` gets with pip from the package registry when it is not cached (the test
skips, saying so, where that fails: no network to PyPI).
"""

import importlib.util
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO
from gtzan_jax.pretrained import musicnn, weights

REFERENCE = os.path.join(REPO, 'tests', 'data', 'musicnn_reference.npz')


def _tensors(model):
  try:
    return weights.load(model)
  except (OSError, ValueError, subprocess.SubprocessError) as e:
    pytest.skip(f'the musicnn wheel could not be had from the package registry: {e}')


@pytest.mark.parametrize('model, feature', [('MSD_musicnn', 'penultimate'), ('MSD_vgg', 'pool5'),
                                            ('MTT_musicnn', 'penultimate'), ('MTT_vgg', 'pool5')])
def test_flax_network_equals_musicnns_tensorflow_graph(model, feature):
  with np.load(REFERENCE) as f:
    reference = {k: f[k] for k in f.files}
  net = musicnn.create(model)
  variables = musicnn.from_checkpoint(_tensors(model), model)
  logits, features = jax.jit(lambda v, x: net.apply(v, x, train=False))(variables, reference['input'])
  np.testing.assert_allclose(jax.nn.sigmoid(logits), reference[f'{model}/taggram'], atol=1e-4, rtol=0)
  np.testing.assert_allclose(features[feature], reference[f'{model}/{feature}'], atol=1e-4, rtol=0)
  # A reference that anything matches proves nothing: the tags are not flat.
  assert np.ptp(reference[f'{model}/taggram']) > 0.05


def test_a_checkpoint_missing_a_tensor_is_named():
  tensors = dict(_tensors('MSD_vgg'))
  del tensors['3CNN/kernel']
  with pytest.raises(ValueError, match="has no tensor 'model/3CNN/kernel'"):
    musicnn.from_checkpoint(tensors, 'MSD_vgg')


@pytest.mark.skipif(importlib.util.find_spec('tensorflow') is None,
                    reason='TensorFlow is not installed (it never is in the project venv): the shipped reference is checked above')
def test_the_reference_script_reproduces_the_file(tmp_path):
  wheel_dir = tmp_path / 'wheel'
  import zipfile  # pylint: disable=g-import-not-at-top
  with zipfile.ZipFile(weights.find_wheel()) as z:
    z.extractall(wheel_dir)
  out = tmp_path / 'reference.npz'
  subprocess.run([sys.executable, 'scripts/musicnn_reference.py', f'--wheel_dir={wheel_dir}', f'--out={out}'],
                 cwd=REPO, check=True, timeout=600)
  with np.load(out) as new, np.load(REFERENCE) as old:
    for key in old.files:
      if key != 'tensorflow_version':
        np.testing.assert_allclose(new[key], old[key], atol=1e-5, err_msg=key)


def test_the_log_is_taken_in_float32_where_musicnns_float16_cast_overflows():
  """A loud 3 s tone: musicnn's float16 mel gives inf before the log; ours stays finite (a peak of 483 -> 6.68)."""
  from gtzan_jax.pretrained import features
  y = (0.99 * np.sin(2 * np.pi * 440 * np.arange(3 * features.SAMPLE_RATE) / features.SAMPLE_RATE)).astype(np.float32)
  import librosa  # pylint: disable=g-import-not-at-top
  mel = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
  with np.errstate(over='ignore'):
    assert not np.isfinite(np.log10(10000 * mel.astype(np.float16) + 1)).all()  # musicnn's extractor
  patches = features.log_mel_patches(y)
  assert patches.shape == (1, 187, 96) and np.isfinite(patches).all()
  np.testing.assert_allclose(patches.max(), np.log10(10000 * mel[:187].max() + 1), rtol=1e-6)
