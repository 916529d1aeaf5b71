"""What the tests that run a network through a real node share (the test network of the contract, VISA, UnionPay):
the node's software HSM and the pin pad's terminal key, an acquirer's PIN request, whether a PIN block seen on the
network's wire carries PIN 1234 under a zone key, and the node.toml and routes.toml around the network's connector.
"""

from __future__ import annotations

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from hsm.testing import TestPinPad
from switch.model.message import Message
from tests.integration.harness import purchase

HSM = SoftwareHsm(Lmk.thales_test())
TPK = HSM.generate_key("002").under_lmk  # the pin pad listener's terminal PIN key
PVK = HSM.generate_key("002").under_lmk  # checks a PIN block by its PVV, whatever key it is under
PIN = "1234"


# node.toml around a network's connector, as str.format templates ({tpk}: the pin pad's TPK, {issuer}: the port of a
# generic connector "issuer", where requests the network sends for the bank's cards go). A test puts its network's
# [[connectors]] table between the two.
NETWORK_TOML_HEAD = """
[hsm]
kind = "software"
test_lmk = true

[[listeners]]
name = "pinpad"
port = 0
scheme = "generic"
pin_key = {{ type = "TPK", key = "{tpk}" }}
"""
ISSUER_CONNECTOR_TOML = """
[[connectors]]
name = "issuer"
hosts = ["127.0.0.1:{issuer}"]
timeout_ms = 2000
backoff_initial_ms = 50
backoff_max_ms = 200
"""


def network_routes(network: str, route: str, bins: str) -> str:
    """Everything to ``network``, except the bank's own ``bins`` (route ``route``), which go to "issuer"."""
    return f"""
default = "{network}"
[destinations.{network}]
links = ["{network}"]
[destinations.issuer]
links = ["issuer"]
[[routes]]
name = "{route}"
bins = ["{bins}"]
destination = "issuer"
"""


def pin_request(pan: str, stan: int) -> Message:
    """A purchase with PIN 1234 under the pin pad's TPK."""
    request = purchase(pan, stan=stan)
    request[52] = TestPinPad().pin_block("TPK", TPK, PIN, pan)
    return request


def _pvv(zpk: str, block: bytes, pan: str) -> str:
    return HSM.generate_pvv("001", zpk, PVK, block.hex().upper(), "01", pan[-13:-1], 1)


def pin_under(zpk: str, block_hex: str, pan: str) -> bool:
    """Whether ``block_hex`` (a PIN block on the network's wire) is PIN 1234 of ``pan`` under zone key ``zpk``."""
    return _pvv(zpk, bytes.fromhex(block_hex), pan) == _pvv(zpk, TestPinPad().pin_block("ZPK", zpk, PIN, pan), pan)
