"""The workshop on Kubernetes through the Zero to JupyterHub chart (hub.backend: kubernetes).

- `supported`: what of workshop.yaml Z2JH cannot express (refused when the settings load).
- `mapping`: the settings in KubeSpawner's terms, shared by the renderer and the hub's backend.
- `values`: the chart's values for `dlworkshop render z2jh`.
- `chart`: the pinned chart's defaults and schema (package data), and the schema check.
- `checks`: what neither schema catches (profile overrides, extended resource names).
- `manifests`: the pods KubeSpawner itself would create, checked against Kubernetes' OpenAPI schema.

`chart`, `checks` and `manifests` need the `[kubernetes]` extra; the rest only the base install.
"""
