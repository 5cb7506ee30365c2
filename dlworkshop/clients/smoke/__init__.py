"""The instructor's smoke test: prove a hub (or an image) is ready before the learners arrive."""
