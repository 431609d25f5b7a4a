#!/usr/bin/env bash
# Train the published-size 5 Hz codec (configs/codec/paper.yaml, 154 M parameters) on LibriTTS with GPUs:
#   1 prepare (manifests per subset + a merged train.jsonl)  2 content (skipped: paper.yaml has no content heads)
#   3 train (configs/codec/train_gpu.yaml, bf16)  4 export (fp32 release -> models/ucodec-5hz)
#   5 eval (test-clean at 1/2/4/8/16/32 levels + phoneme probe)
#
#   recipes/libritts/run_codec.sh /data/LibriTTS --num-processes 8        # 8 GPUs via accelerate launch
#   recipes/libritts/run_codec.sh /data/LibriTTS_R --flavour libritts-r --dry-run
#
# --num-processes N > 1 launches `accelerate launch --multi_gpu --num_processes N` (also CPU DDP on a CPU box).
# Re-running continues: finished stages are skipped and training resumes. Options: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/../run_python.sh" recipes.codec_recipe libritts "$@"
