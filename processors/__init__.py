"""Issuer processors: the bank's debit platform and credit-card core, partitioned into cells.

Planned by the processors issue (see DESIGN.md §6); nothing here yet. Until it lands, the demo routes the bank's
cards to the issuer simulator (``bulkhead sim issuer``).
"""
