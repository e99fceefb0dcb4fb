# powershare: the gateway (`powershare run`), or any other job of the CLI (simulate, csms, check-config, ...).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md CHANGELOG.md ./
COPY docs ./docs
COPY drivers ./drivers
COPY gateway ./gateway
COPY profiles ./profiles
RUN pip install . && rm -rf /src

# A user of its own; dialout lets it open RS-485 adapters passed in with --device /dev/ttyUSB0.
RUN useradd --system --no-create-home --shell /usr/sbin/nologin --groups dialout powershare \
    && install -d -o powershare -g powershare /var/lib/powershare /etc/powershare
USER powershare
WORKDIR /var/lib/powershare
VOLUME ["/var/lib/powershare"]
EXPOSE 5020 8080

# The service is healthy while it accepts connections on its port (the BMS face for the gateway; compose sets the
# port for the simulator and the central system).
ENV POWERSHARE_HEALTH_PORT=5020
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, socket; socket.create_connection(('127.0.0.1', int(os.environ['POWERSHARE_HEALTH_PORT'])), 3).close()"

STOPSIGNAL SIGTERM
CMD ["powershare", "run", "--config", "/etc/powershare/site.yaml", "--state-dir", "/var/lib/powershare"]
