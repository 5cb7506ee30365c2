"""Building the learner image and its offline base (runs on the instructor's or admin's machine)."""
