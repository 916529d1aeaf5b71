"""The running node: the composition root, links, the store-and-forward forwarder, the node's processes."""
