"""``python -m dc_invariant.cli``: the same as ``dc-invariant``."""

import sys

from dc_invariant.cli import main

if __name__ == "__main__":
    sys.exit(main())
