"""`python -m w2s_app` runs the CLI."""

from .cli import main

raise SystemExit(main())
