"""Code that runs inside the learner container, one module per concern:

- `layout`: where things are in the image, and the environment variables that say so;
- `start`: the entry point at every server start (threads, CUDA path, data links, lessons);
- `process_hooks`: what every Python process gets from a .pth file (`offline_urls`, and
  `tensorflow_setup` when TensorFlow is imported, through `import_hooks`);
- `threads`, `data_links`: thread pools from the CPU quota; links into the data caches;
- `kernels`, `server_config`, `healthcheck`: the Jupyter server's kernel manager, settings and health.

Standard library (plus what the learner image's lock already has) only, and nothing from the host
package `dlworkshop`: the image installs this package in its last layers, so a change here rebuilds
only those.
"""
