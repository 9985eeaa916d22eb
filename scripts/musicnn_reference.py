"""Makes tests/data/musicnn_reference.npz: musicnn's own TensorFlow graphs (all four) run on a fixed input.

Run once, in a throwaway environment with TensorFlow (never a dependency of this project):

  python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.* librosa
  /tmp/tfenv/bin/python scripts/musicnn_reference.py --wheel_dir=DIR   # DIR holds musicnn-0.1.0 unzipped

The shipped `.meta` graphs do not import on TF 2.21 (`import_meta_graph` fails on the gradient
nodes' `_output_shapes`), so this parses each MetaGraphDef, drops the `gradients/`, `Adam` and
`save` nodes and every `_output_shapes` attribute, imports the rest (the forward graph: inputs
`model/Placeholder` [None, 187, 96] and the training flag `model/Placeholder_2`, output
`model/Sigmoid`) and feeds every variable's `<name>/read` with the checkpoint's value
(`NewCheckpointReader` of the `<dir>/` prefix: the `checkpoint` file names the author's
own path). The input: two 3 s patches of a synthetic 30 s clip (tfds_gtzan.synthetic, genre 0,
clip 0), resampled to 16 kHz, musicnn's log-mel computed in float32 (its float16 cast before
the log overflows). tests/test_musicnn.py checks our Flax networks against the file.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

OUTPUTS = {  # what to keep of each graph: our feature name -> TF tensor name
    'musicnn': {'taggram': 'model/Sigmoid:0', 'penultimate': 'model/batch_normalization_10/batchnorm/add_1:0'},
    'vgg': {'taggram': 'model/Sigmoid:0', 'pool5': 'model/max_pooling2d_4/MaxPool:0'},
}


def patches() -> np.ndarray:
  import librosa  # pylint: disable=g-import-not-at-top
  from tfds_gtzan import synthetic  # pylint: disable=g-import-not-at-top
  y = librosa.resample(synthetic.generate_clip(0, 0), orig_sr=synthetic.SAMPLE_RATE, target_sr=16000)
  mel = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
  log = np.log10(10000 * mel.astype(np.float32) + 1)
  return np.stack([log[0:187], log[187:374]]).astype(np.float32)


def forward_graph(meta_path: str):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  meta = tf.compat.v1.MetaGraphDef()
  with open(meta_path, 'rb') as f:
    meta.ParseFromString(f.read())
  graph_def = tf.compat.v1.GraphDef()
  for node in meta.graph_def.node:
    if node.name.startswith(('gradients/', 'save/')) or 'Adam' in node.name:
      continue
    kept = graph_def.node.add()
    kept.CopyFrom(node)
    if '_output_shapes' in kept.attr:
      del kept.attr['_output_shapes']
    for name in [i for i in kept.input if i.lstrip('^').startswith(('gradients/', 'save/')) or 'Adam' in i]:
      kept.input.remove(name)
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(graph_def, name='')
  return graph


def run_model(model_dir: str, kind: str, x: np.ndarray) -> dict[str, np.ndarray]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.compat.v1.disable_eager_execution()
  graph = forward_graph(os.path.join(model_dir, '.meta'))
  reader = tf.compat.v1.train.NewCheckpointReader(model_dir + '/')  # the files are <dir>/.index, ...
  feed = {}
  for name in reader.get_variable_to_shape_map():
    if 'Adam' in name or name.endswith('_power'):
      continue
    try:
      feed[graph.get_tensor_by_name(f'{name}/read:0')] = reader.get_tensor(name)
    except KeyError:
      print(f'not in the forward graph: {name}', file=sys.stderr)
  feed[graph.get_tensor_by_name('model/Placeholder:0')] = x
  feed[graph.get_tensor_by_name('model/Placeholder_2:0')] = False
  with tf.compat.v1.Session(graph=graph) as session:
    names = OUTPUTS[kind]
    values = session.run([graph.get_tensor_by_name(t) for t in names.values()], feed_dict=feed)
  return dict(zip(names, values))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--wheel_dir', required=True, help='The unzipped musicnn-0.1.0 wheel.')
  parser.add_argument('--out', default=os.path.join(ROOT, 'tests', 'data', 'musicnn_reference.npz'))
  args = parser.parse_args()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = patches()
  arrays = {'input': x}
  for model in ('MSD_musicnn', 'MSD_vgg', 'MTT_musicnn', 'MTT_vgg'):
    outputs = run_model(os.path.join(args.wheel_dir, 'musicnn', model), model.split('_')[1], x)
    for name, value in outputs.items():
      arrays[f'{model}/{name}'] = value
      print(model, name, value.shape, float(np.abs(value).max()))
  arrays['tensorflow_version'] = np.array(tf.__version__)
  np.savez_compressed(args.out + '.tmp.npz', **arrays)
  os.replace(args.out + '.tmp.npz', args.out)
  print(f'{args.out}: {os.path.getsize(args.out)} bytes')


if __name__ == '__main__':
  main()
