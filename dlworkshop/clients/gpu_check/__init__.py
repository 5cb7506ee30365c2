"""`scripts/gpu-check`: the GPU quotas proven on a machine with NVIDIA GPUs (run), by rules that
need none (plan)."""
