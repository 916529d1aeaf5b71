"""UnionPay (CUPS). Today its framing (``framing``: the 46-byte header); the network itself (dialect, codes,
network management) is registered by the UnionPay link issue."""
