"""`python -m loadtests.bench`: see loadtests/bench/__init__.py."""

import sys

from loadtests.bench.main import main

sys.exit(main())
