"""VISA (BASE I / V.I.P.). Today its framing (``framing``: VMLH and the BASE I header); the network itself
(dialect, codes, network management) is registered by the VISA link issue."""
