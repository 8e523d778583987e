"""`python -m tinycnn.cli`: the `tinycnn` command without its console script."""
import sys

from tinycnn.cli.main import main

sys.exit(main())
