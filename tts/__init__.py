"""Global-local hierarchical TTS on top of the 5 Hz codec (see DESIGN.md §4)."""
