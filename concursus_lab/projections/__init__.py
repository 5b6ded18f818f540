"""Projections: views, keyed folds, diff, bisect, chaos, threads, export."""
