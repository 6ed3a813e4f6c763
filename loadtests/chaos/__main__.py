"""`python -m loadtests.chaos`: see loadtests/chaos/__init__.py."""

import sys

from loadtests.chaos.main import main

sys.exit(main())
