#!/usr/bin/env bash
# Fine-tune the shipped TTS model (or --base RELEASE) on one speaker: a folder of wav + txt in, a release out.
#
#   recipes/finetune/run.sh SPEAKER_DIR OUT_DIR [--base RELEASE] [--steps N] [--set train.lr=5e-5] [--stage 3]
#
# Data format, amounts and what each stage does: recipes/finetune/README.md. Runs with .venv/bin/python when the
# repository has one, else python3. Re-running the same command continues an interrupted run.
exec "$(dirname "${BASH_SOURCE[0]}")/../run_python.sh" recipes.finetune "$@"
