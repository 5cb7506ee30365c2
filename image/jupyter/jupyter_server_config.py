# Installed as /etc/jupyter/jupyter_server_config.py; the settings live in the learner package.
from dlworkshop_learner.server_config import apply

apply(get_config())  # noqa: F821
