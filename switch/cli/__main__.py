"""``python -m switch.cli``: the ``bulkhead`` command."""

from switch.cli.main import main

main()
