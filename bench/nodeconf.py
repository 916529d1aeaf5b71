"""The part every benchmark node.toml shares (bench/harness.py's issuer-simulator node and bench/cells.py's node
with processor cells): the node, its group commit and the acquirer listener, all on loopback in the run's
folder; and the ATM listener with its TPK and the node's HSM, for the scenarios that send ATM withdrawals with a
PIN (the cells' and the network scenarios')."""

NODE_HEAD_TOML = """\
# Benchmark node written by the bench package: everything on loopback, journal in this folder.
[node]
name = "{name}"
var_dir = "{var}"
routes = "routes.toml"
processes = {processes}

[journal]
max_batch = {max_batch}
max_wait_ms = {max_wait_ms}

[[listeners]]
name = "acquirer"
host = "127.0.0.1"
port = {port}
scheme = "generic"
framing = {{ kind = "binary2" }}
max_connections = 1000
max_connections_per_peer = 1000
allow = ["127.0.0.0/8"]
idle_timeout_s = 600
"""

ATM_TOML = """
[[listeners]]
name = "atm"
host = "127.0.0.1"
port = {atm_port}
scheme = "atm"
framing = {{ kind = "binary2" }}
max_connections = 1000
max_connections_per_peer = 1000
allow = ["127.0.0.0/8"]
idle_timeout_s = 600
pin_key = {{ type = "TPK", key = "{tpk}" }}

[hsm]
kind = "software"
test_lmk = true
"""
