"""The strong model and the guides: local transformers models and OpenAI-compatible APIs."""
