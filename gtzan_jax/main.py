"""Trains and evaluates a genre classifier.

  python -m gtzan_jax.main --config=configs/default.py --workdir=DIR --config.batch_size=128

Every `--config.key=value` overrides the config file (a field it lacks, or a value
that cannot work, is a one-line error). A workdir that already holds a checkpoint
is resumed from it, with the config it was written with (see gtzan_jax/train.py).
"""

from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from gtzan_jax import cli
from gtzan_jax import train

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, TensorBoard events and results.json.')
config_flags.DEFINE_config_file('config', None, 'Training configuration file.', lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  cli.check_flag(len(argv) == 1, f'unexpected arguments: {" ".join(argv[1:])}')
  logging.info('JAX %s: process %d/%d, %d local / %d global devices (%s).', jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.devices()[0].device_kind)
  if cli.run_command(lambda: train.train_and_evaluate(FLAGS.config, FLAGS.workdir), FLAGS.config) is None:
    return  # stopped by a signal; the message says where it was checkpointed
  if jax.process_index() == 0:
    print(f'Results: {FLAGS.workdir}/results.json', flush=True)


if __name__ == '__main__':
  cli.run(main)
