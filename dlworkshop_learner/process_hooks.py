"""What a learner's Python processes get, from a .pth file the image writes:

    import dlworkshop_learner.process_hooks; dlworkshop_learner.process_hooks.install()

the offline URL hook, TensorFlow's C++ log level (before any import could load it), and TensorFlow
configured lazily. Only for learners' code (kernels, scripts,
`python -c`, an interactive Python): installed programs (Jupyter's commands, TensorBoard, pip,
`dlworkshop`) and this package's own modules (the start hook, the health check) skip the hooks'
imports, so a process that is not a learner's costs what plain Python costs. Nothing heavy is
imported here, and it never raises: a learner's Python must start whatever happens.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

# Interpreter options that take a value in the next argument (python -W error -X dev ...).
_OPTIONS_WITH_VALUE = {"-W", "-X", "-Q"}
# Programs in the environment's bin folder that run a learner's code in their own process.
_LEARNER_PROGRAMS = {"ipython", "ipython3", "python", "python3"}
# Modules run with -m that are not a learner's code.
_NOT_LEARNER_MODULES = ("dlworkshop", "dlworkshop_learner", "pip", "jupyter", "tensorboard")

_installed = False


def runs_learner_code(argv: Sequence[str], bin_folder: str) -> bool:
    """Whether the process started as `argv` (sys.orig_argv) runs a learner's code."""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-m":
            module = next(args, "")
            return module.split(".", 1)[0] not in _NOT_LEARNER_MODULES
        if arg == "-c" or arg == "-":
            return True
        if arg in _OPTIONS_WITH_VALUE:
            next(args, None)
            continue
        if arg.startswith("-"):
            continue
        script = os.path.abspath(arg)
        if os.path.dirname(script) == bin_folder:
            return os.path.basename(script) in _LEARNER_PROGRAMS
        return True
    return True  # an interactive Python


def install() -> None:
    global _installed
    if _installed:  # the .pth may be read twice (lib and lib64 of one environment)
        return
    _installed = True
    try:
        argv = getattr(sys, "orig_argv", sys.argv)
        if not runs_learner_code(argv, os.path.join(sys.prefix, "bin")):
            return
        from dlworkshop_learner import offline_urls
        from dlworkshop_learner.import_hooks import when_imported
        from dlworkshop_learner.tensorflow_setup import configure_tensorflow, quiet_environment

        quiet_environment(os.environ)
        offline_urls.install()
        when_imported("tensorflow", configure_tensorflow)
    except Exception as exc:
        warnings.warn(f"dlworkshop learner hooks not installed: {exc}", stacklevel=1)
