"""Code that runs inside the learner container: start hooks, kernels, the offline URL hook.

Standard library (plus what the learner image's lock already has) only, and nothing from the host
package `dlworkshop`: the image installs this package in its last layers, so a change here rebuilds
only those.
"""
