"""`python -m tests.cluster up|down|status|binaries`."""

import sys

from tests.cluster.localcluster import main

sys.exit(main(sys.argv[1:]))
