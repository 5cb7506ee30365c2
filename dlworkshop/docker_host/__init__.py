"""What any Docker host of the workshop needs, shared by `dlworkshop up` on this machine and the
deploy on a remote host (both hand the same data to Docker or to the Ansible roles).

- `hub_runtime`: the hub's settings file and its container spec;
- `firewall`: the learners' host firewall rules;
- `work_volumes` (and `work_volumes.sh`): the size-limited work-folder slots;
- `shared_folder`: the instructor's folder, read-only in every learner's server.
"""
