"""ATM processing: terminal registry, dispense outcomes, cassettes, terminal totals and terminal keys.

Sans-I/O rules: :mod:`atmp.model` (terminals, cassettes, key sets, status table), :mod:`atmp.admission` (who may
send what), :mod:`atmp.cash` (note mix, replenishment), :mod:`atmp.dispense` (outcomes and how a second word is
judged), :mod:`atmp.interface` (the ATM interface's own fields), :mod:`atmp.totals`; :mod:`atmp.channel` and
:mod:`atmp.keys` are the network's seams. Storage: :mod:`atmp.storage` (the node's database). The ATM host
interface itself is the ``atm`` scheme in ``schemes/atm``; README "ATM processing (ATMP)".
"""
