"""Gradio demo and speech server (see DESIGN.md §1)."""
