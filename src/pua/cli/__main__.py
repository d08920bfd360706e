"""``python -m pua.cli``."""

from pua.cli.main import main

raise SystemExit(main())
