"""Card networks: each one's dialect to and from the canonical message, behind the network contract
(:mod:`switch.contracts.network`). A network is data plus small functions (spec dict, framing, field mapping,
match key, response-code table, network-management rules, secret fields), registered by name through the
entry-point group ``bulkhead.schemes``. :mod:`schemes.iso87` is the ISO 8583:1987 behaviour the others build on.
"""
