# Image for the production shape (docker-compose.yml). GPU nodes add a CUDA build of torch.
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -c constraints.txt .
ENV HF_HUB_OFFLINE=1
ENTRYPOINT []
