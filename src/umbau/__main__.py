import sys

from umbau.cli import main

sys.exit(main())
