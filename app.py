"""w2s-arena web app entry point (Hugging Face Spaces runs this file)."""

from w2s_app.ui import main

if __name__ == "__main__":
    main()
