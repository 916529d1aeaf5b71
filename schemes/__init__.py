"""Card-scheme adapters: each network's dialect to and from the canonical message.

A scheme is data plus small functions (spec dict, field mapping, match key, response-code table,
network-management builders), registered by name through the entry-point group ``bulkhead.schemes``.
"""
