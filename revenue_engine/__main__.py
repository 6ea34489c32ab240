"""``python -m revenue_engine`` is the ``revenue-engine`` command."""

from revenue_engine.cli import main

raise SystemExit(main())
