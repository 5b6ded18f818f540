"""Concursus's Redis layout: event sets per aggregate and a catalogue per type."""
