"""dlworkshop: run the "Introduction to deep learning" lesson as a hands-on workshop.

One package shared by the learner image, the hub, the Ansible deploy and the instructor's tools.
Keep this module import-light: the learner image imports parts of the package in every kernel.
"""

__version__ = "0.1.0"
