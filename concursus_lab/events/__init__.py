"""Typed events: declared types, value coercion, decoding rows into instances."""
