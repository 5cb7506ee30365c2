"""The hub process: JupyterHub configured from the settings model (hub/config.py)."""

# Every engine's table of what it refuses, before any hub module loads settings.
import dlworkshop.engines  # noqa: F401
