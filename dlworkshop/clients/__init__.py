"""Clients of a running hub, on the instructor's machine (through dlworkshop.hubclient, or the
Docker API for learners' work).

- `status`, `hub_admin`: the room view and `close`;
- `export`: learners' work saved out of the engine's volumes;
- `loadtest`, `instructor`: the load test and the instructor's tools' own learner secrets;
- `smoke/`: the smoke test.
"""
