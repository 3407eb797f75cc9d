"""The local server: the real handlers on an embedded AWS emulator (`python -m devserver`).

It runs this checkout's functions, so their code root goes first on `sys.path` before any of the
server's modules imports them (an installed copy of the package would otherwise win).
"""

import sys
from pathlib import Path

_FUNCTIONS = str(Path(__file__).resolve().parent.parent / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.insert(0, _FUNCTIONS)
