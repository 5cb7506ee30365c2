"""The testinfra suite `dlworkshop verify` runs against deployed hosts (shipped in the package)."""
