"""python -m hybridplace.cli"""

import sys

from .main import main

sys.exit(main())
