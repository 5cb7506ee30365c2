"""What every Python process in the learner image gets, from a .pth file the image writes:

    import dlworkshop_learner.process_hooks; dlworkshop_learner.process_hooks.install()

the offline URL hook, and TensorFlow configured lazily. Cheap (nothing heavy is imported here), and
it never raises: a learner's Python must start whatever happens.
"""

from __future__ import annotations

import warnings


def install() -> None:
    try:
        from dlworkshop_learner import offline_urls
        from dlworkshop_learner.import_hooks import when_imported
        from dlworkshop_learner.tensorflow_setup import configure_tensorflow

        offline_urls.install()
        when_imported("tensorflow", configure_tensorflow)
    except Exception as exc:
        warnings.warn(f"dlworkshop learner hooks not installed: {exc}", stacklevel=1)
