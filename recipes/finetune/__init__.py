"""Fine-tune a released TTS model on your own voice: ``python -m recipes.finetune SPEAKER_DIR OUT_DIR`` (README.md)."""
