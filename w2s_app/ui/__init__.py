"""Gradio UI. The full app comes with the UI issue; for now a note on how to use the CLI."""


def main() -> None:
    """Entry point used by app.py."""
    print(
        "The web UI is not built yet. Use the CLI meanwhile:\n"
        '  python -m w2s_app generate --prompt "Give three tips for staying healthy."'
    )
