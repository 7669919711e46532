"""``python -m kago.manager.supervisor``: the supervisor process (main.py)."""

import sys

from kago.manager.supervisor.main import main

sys.exit(main())
