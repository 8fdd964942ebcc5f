from runlink.cli import main
import sys

sys.exit(main())
