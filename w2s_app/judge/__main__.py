"""`python -m w2s_app.judge judge ...` and `... agreement ...` (the same as `python -m w2s_app judge`)."""

from .command import main

raise SystemExit(main())
