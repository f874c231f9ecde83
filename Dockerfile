# SceneLink server image: the same server as `bash .ci/dev serve`.

# Build stage: the wheel, with the C extension streamserver.native._native compiled against libsrtp2.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config \
        libsrtp2-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY streamserver ./streamserver
COPY signalling ./signalling
COPY recorder ./recorder
COPY retention ./retention
COPY web_client ./web_client
COPY operator_console ./operator_console
COPY bench ./bench
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SCENELINK_DATA_DIR=/var/lib/scenelink SCENELINK_HOST=0.0.0.0 SCENELINK_PORT=8080

RUN useradd --system --home /var/lib/scenelink --create-home scenelink
WORKDIR /opt/scenelink
# libsrtp2's run-time library, for the C extension.
RUN apt-get update && apt-get install -y --no-install-recommends libsrtp2-1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

USER scenelink
VOLUME ["/var/lib/scenelink"]
EXPOSE 8080
# WebRTC media uses UDP on ephemeral ports: run with host networking or publish a UDP range,
# and put a TURN server (coturn) in SCENELINK_ICE_SERVERS for callers behind carrier NAT.
CMD ["scenelink", "serve"]
