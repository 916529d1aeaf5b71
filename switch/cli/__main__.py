"""``python -m switch.cli``: the ``bulkhead`` command (the node starts its cell processes this way)."""

from switch.cli import main

main()
