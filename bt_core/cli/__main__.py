"""``python -m bt_core.cli``: the same as the installed ``bt-zoo`` command."""

import sys

from bt_core.cli.zoo import main

if __name__ == "__main__":
    sys.exit(main())
