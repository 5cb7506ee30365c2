"""JupyterHub's configuration file: load workshop.yaml through the one settings model and hand it to
the hub package, then the site's own configuration files. Everything else lives in hub/config.py."""

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
# The site's jupyterhub_config.d (hub.extra_config) last, in name order, through traitlets' own
# loader as TLJH does: what a file sets wins over ours, and its `.append`/`.update` add to ours.
for site_file in contract.site_config_files(Path(contract.hub_extra_config())):
    print(f"dlworkshop: loading the site's {site_file}", file=sys.stderr, flush=True)
    load_subconfig(str(site_file))  # noqa: F821  (traitlets' config loader provides it)
