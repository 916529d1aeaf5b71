"""The part every benchmark node.toml shares (bench/harness.py's issuer-simulator node and bench/cells.py's node
with processor cells): the node, its group commit and the acquirer listener, all on loopback in the run's
folder."""

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
