"""`python -m mcf_ros` is the `mcf` command."""

import sys

from mcf_ros.cli import main

sys.exit(main())
