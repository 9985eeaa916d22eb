#!/usr/bin/env bash
# The one entry point for a fresh machine.
#
#   ./run.sh [WORKDIR]      install into .venv, build the embedded synthetic dataset, train
#                           configs/synthetic.py into WORKDIR (default runs/synthetic), evaluate,
#                           and print where results.json is.
#   ./run.sh test [ARGS]    install the test extras and run the whole test suite (ARGS go to pytest).
#
# Environment: PYTHON (interpreter that creates the venv, default python3), VENV (default .venv),
# DATA_DIR (TFDS data_dir, default ./data).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
DATA_DIR=${DATA_DIR:-data}

install() {  # install [EXTRA]: (re)installs the package when setup.cfg changed since the last install
  local extra=${1:-} stamp
  if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating $VENV with $("$PYTHON" --version 2>&1)..."
    "$PYTHON" -m venv "$VENV"
  fi
  stamp="$VENV/.installed${extra:+-$extra}-$(cksum < setup.cfg | cut -d' ' -f1)"
  if [ ! -e "$stamp" ]; then
    echo "Installing gtzan_jax${extra:+[$extra]} and its dependencies into $VENV (about a minute)..."
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".${extra:+[$extra]}"
    touch "$stamp"
  fi
}

if [ "${1:-}" = "test" ]; then
  shift
  install test
  exec "$VENV/bin/python" -m pytest "$@"
fi

WORKDIR=${1:-runs/synthetic}
install
"$VENV/bin/python" -m gtzan_jax.main --config=configs/synthetic.py --workdir="$WORKDIR" \
  --config.data_dir="$DATA_DIR"
"$VENV/bin/python" -m gtzan_jax.evaluate --workdir="$WORKDIR" --split=test
echo "Done. Results: $WORKDIR/results.json; evaluation report: $WORKDIR/report_test.md"
echo "(confusion matrices: $WORKDIR/report_test_confusion_*.png; TensorBoard events: $WORKDIR/tensorboard)"
