"""`python -m model_navigator`: the model-navigator command line."""

import sys

from model_navigator.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
