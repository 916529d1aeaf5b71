"""ATM processing: terminal registry, dispense outcomes, cassettes, terminal totals and key exchange.

Planned (see DESIGN.md §2); nothing here yet. The ATM host interface itself is the ``atm`` scheme in
``schemes/atm``.
"""
