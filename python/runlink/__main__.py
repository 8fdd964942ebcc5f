import sys

from runlink.cli import main

sys.exit(main())
