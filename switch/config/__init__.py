"""The node's configuration: ``node.toml`` read into frozen dataclasses (``node``), its links (``links``), every
error naming the file, the key and the reason. Tables owned by other packages are read by their sections
(switch.contracts.section)."""

from switch.config.links import ConnectorConfig, ListenerConfig, TlsConfig
from switch.config.node import (
    AtmpConfig,
    JournalConfig,
    MetricsConfig,
    NodeConfig,
    SafConfig,
    load_config,
    parse_config,
)

__all__ = ["AtmpConfig", "ConnectorConfig", "JournalConfig", "ListenerConfig", "MetricsConfig", "NodeConfig",
           "SafConfig",
           "TlsConfig", "load_config", "parse_config"]
