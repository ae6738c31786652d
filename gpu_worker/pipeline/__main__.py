"""Entry point of `python -m gpu_worker.pipeline`."""

import sys

from .cli import main

sys.exit(main())
