"""Time travel: the replay plan, folding, states at any point on both time axes."""
