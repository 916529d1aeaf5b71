"""Business-day cutover, reconciliation, clearing files and net settlement.

Planned (see DESIGN.md §2); nothing here yet. It will read the journal that ``switch.storage`` writes.
"""
