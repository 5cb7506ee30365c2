#!/bin/bash
# Entry point of the learner image, for every server start (kernels inherit the environment):
# threads sized to the container's CPU quota, data caches linked, lessons copied in. Then the command.
set -e
eval "$(python -m dlworkshop_learner_hooks start)"
exec "$@"
