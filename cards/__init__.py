"""Adaptive Cards as pure functions (typed arguments in, card dict out), and what they submit."""
