"""The canonical event frame and the rules that define a replay: identity and which
delivery wins, causal order, the two-axis cut, the creation rules; time UUIDs, Java's hash."""
