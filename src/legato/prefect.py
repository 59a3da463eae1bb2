"""``python -m legato.prefect script.py [args...]``: run a Prefect script unchanged.

Installs `legato.prefect_shim` (``from prefect import flow`` then gets legato's),
and runs the script as ``python script.py [args...]`` would: as ``__main__``,
with ``sys.argv`` set and the script's folder first on ``sys.path``. A ``prefect``
module or name legato does not map stops it with one line on stderr, exit 1.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

USAGE = "usage: python -m legato.prefect script.py [args...]"


def main(argv: list[str]) -> int:
    from legato.errors import PrefectAttributeUnsupported, PrefectImportUnsupported
    from legato.prefect_shim import install

    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 0 if argv else 2
    script = argv[0]
    if not Path(script).is_file():
        print(f"legato.prefect: file '{script}' does not exist; {USAGE}", file=sys.stderr)
        return 2
    install()
    sys.argv = [script, *argv[1:]]
    sys.path[0] = str(Path(script).resolve().parent)
    try:
        runpy.run_path(script, run_name="__main__")
    except (PrefectImportUnsupported, PrefectAttributeUnsupported) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
