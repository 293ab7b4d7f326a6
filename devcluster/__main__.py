"""`python -m devcluster up|down|status|binaries`."""

import sys

from devcluster.localcluster import main

sys.exit(main(sys.argv[1:]))
