"""`dlworkshop deploy` and `verify`: the Ansible playbook in ansible/ run through ansible-runner
against an inventory, fed from the one settings model, and the testinfra suite that proves the
result on every host."""
