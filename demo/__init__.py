"""Gradio demo and speech server (see docs/design.md)."""
