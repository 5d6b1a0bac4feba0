"""Train a zoo of brain-tumor MRI classifiers and write one run folder for the dashboard.

The thin entry the README names; every option is documented in :mod:`bt_core.cli`
(``python train_all.py --help``).
"""

import sys

from bt_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
