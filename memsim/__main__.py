"""python -m memsim"""

import sys

from memsim.cli import main

sys.exit(main())
