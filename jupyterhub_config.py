"""JupyterHub's configuration file: load workshop.yaml through the one settings model and hand it to
the hub package. Everything else lives in hub/config.py."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dlworkshop import contract
from dlworkshop.settings import load_settings
from hub.config import configure

settings_file = Path(os.environ.get(contract.CONFIG_ENV) or contract.HUB_SETTINGS)
c = get_config()  # noqa: F821  (JupyterHub provides it)
configure(c, load_settings(settings_file), settings_file=settings_file)
