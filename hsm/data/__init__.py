"""Package data: the public Thales test LMK (``thales-test-lmk.txt``), for demos and tests only."""
