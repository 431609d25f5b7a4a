#!/usr/bin/env bash
# Reproduce the shipped codec models/ucodec-5hz-small from scratch on 2 CPU cores:
#   1 prepare (ucodec prepare synthetic data/synth --hours 10)  2 content (phonemes + Whisper features of train.jsonl)
#   3 train (configs/codec/small.yaml + train_cpu.yaml; --init-from RELEASE warm-starts)  4 export (fp16 release)
#   5 eval (test-unseen at 1/2/4/8/16/32 levels + phoneme probe -> docs/codec_eval)
#
#   bash recipes/synthetic/install.sh            # once: the speech engines (Debian + PyPI)
#   recipes/synthetic/run_codec.sh [--stage N] [--stop-stage M] [--dry-run] [--max-steps S] [--set train.lr=...]
#
# Re-running continues: finished stages are skipped and training resumes from its newest checkpoint.
# Options: python -m recipes.codec_recipe synthetic --help. Notes and numbers: docs/codec_training.md.
exec "$(dirname "${BASH_SOURCE[0]}")/../run_python.sh" recipes.codec_recipe synthetic "$@"
