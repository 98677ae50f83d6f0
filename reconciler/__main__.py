"""``python -m reconciler`` → the CLI."""

from reconciler.cli import main

raise SystemExit(main())
