"""Delivery realism: lateness, watermarks, describing and reconciling histories."""
