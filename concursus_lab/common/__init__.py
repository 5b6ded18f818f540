"""Helpers every layer uses: times and durations (parsing, formatting), progress, text."""
