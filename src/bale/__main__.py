import sys

from bale.cli.main import main

sys.exit(main())
