"""The local lifecycle: `dlworkshop up`, `down`, `prewarm` and `share` with the hub on this machine's
Docker engine. Nothing outside the CLI, the hub clients and the benchmarks imports it (the deploy never).

- `local_hub`: up, down, prewarm, share, the running hub;
- `tls`: `up`'s TLS on an address beyond localhost;
- `preflight`: what blocks a start here (`check` reports it, `up` refuses on it).
"""
