"""Make the repository's ``bench`` folder importable in these tests.

``bench`` is not an installed package (setup.cfg installs switch, schemes, hsm, processors...), so it is found
only when the repository root is on ``sys.path``: ``python -m pytest`` puts it there, the ``pytest`` script does
not, and then ``tests/`` (on the path for the root conftest) would make this very folder a namespace package
named ``bench``. Putting the root first settles it either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)
