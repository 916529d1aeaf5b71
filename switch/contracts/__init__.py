"""What the engine knows of everything outside it: the network contract (every card network implements it), the
section contract (packages that add tables to node.toml, links and services to the node) and the registry that
finds both through entry points. Domain packages may import these; they import nothing of the engine."""
