"""Trains and evaluates a genre classifier.

  python -m gtzan_jax.main --config=configs/default.py --workdir=DIR --config.batch_size=128

Every `--config.key=value` overrides the config file. A workdir that already
holds a checkpoint is resumed from it.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from gtzan_jax import train

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, TensorBoard events and results.json.')
config_flags.DEFINE_config_file('config', None, 'Training configuration file.', lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.info('JAX %s: process %d/%d, %d local / %d global devices (%s).', jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.devices()[0].device_kind)
  if train.run_command(lambda: train.train_and_evaluate(FLAGS.config, FLAGS.workdir), FLAGS.config) is None:
    return  # stopped by a signal; the message says where it was checkpointed
  if jax.process_index() == 0:
    print(f'Results: {FLAGS.workdir}/results.json', flush=True)


if __name__ == '__main__':
  app.run(main)
