#!/usr/bin/env bash
# Reproduce the shipped TTS models/tts-small on 2 CPU cores (needs the corpus and the codec: run_codec.sh first):
#   1 filter (drop the accented MBROLA voices; --extra-data DIR adds a second corpus seed)
#   2 tokenize (train + dev, with models/ucodec-5hz-small)
#   3 train (configs/tts/small.yaml + train_cpu.yaml)  4 export  5 eval (test-seen + test-unseen -> docs/tts_eval)
#
#   recipes/synthetic/run_tts.sh [--stage N] [--stop-stage M] [--dry-run] [--max-steps S] [--set train.lr=...]
#
# Re-running continues: finished stages are skipped and training resumes from its newest checkpoint.
# Options: python -m recipes.tts_recipe --help. Notes and numbers: docs/tts_training.md.
exec "$(dirname "${BASH_SOURCE[0]}")/../run_python.sh" recipes.tts_recipe "$@"
