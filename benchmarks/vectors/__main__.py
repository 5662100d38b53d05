"""``python -m benchmarks.vectors``: see ``benchmarks.vectors``."""

from .cli import main

raise SystemExit(main())
