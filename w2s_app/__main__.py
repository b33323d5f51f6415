"""`python -m w2s_app` runs the CLI."""

import logging
import os
import sys

from .cli import main

code = main()
# Everything the command writes is written and flushed here; the process then ends without the
# interpreter's teardown, where native libraries (llama.cpp, torch) destroy their threads and
# objects in no fixed order ("terminate called without an active exception", once under load).
sys.stdout.flush()
sys.stderr.flush()
logging.shutdown()
os._exit(code)
