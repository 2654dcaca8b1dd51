# The PQF Audit Bot as a container: `pqf-bot serve` on port 3978, as a non-root user.
#   docker build -t pqf-audit-bot .
#   docker run --rm --env-file /etc/pqf-bot/pqf-bot.env pqf-audit-bot pqf-bot migrate
#   docker run -d --name pqf-bot --env-file /etc/pqf-bot/pqf-bot.env -p 127.0.0.1:3978:3978 pqf-audit-bot
# Settings come from the environment (docs/configuration.md); none are baked in.

# -- build: install the bot and its dependencies into a virtual environment ----------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/pqf-bot
WORKDIR /src
# Only what the installed bot needs: no tests, examples, Node tools or local data.
COPY pyproject.toml constraints.txt README.md ./
COPY admin/ admin/
COPY bot/ bot/
COPY cards/ cards/
COPY delivery/ delivery/
COPY directory/ directory/
COPY dialogs/ dialogs/
COPY messages/ messages/
COPY practice/ practice/
COPY reports/ reports/
COPY scheduler/ scheduler/
COPY storage/ storage/
# The pinned versions CI tested with; no [dev] extras in production.
RUN /opt/pqf-bot/bin/pip install -c constraints.txt .

# -- run: the virtual environment on a clean image ------------------------------------------
FROM python:3.11-slim

RUN groupadd --system --gid 10001 pqf \
 && useradd --system --uid 10001 --gid pqf --home-dir /var/lib/pqf-bot --create-home \
        --shell /usr/sbin/nologin pqf

COPY --from=build /opt/pqf-bot /opt/pqf-bot

ENV PATH=/opt/pqf-bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PQF_HOST=0.0.0.0 \
    PQF_PORT=3978

# The working folder holds data/ when SQLite is used (DATABASE_URL's default is relative):
# mount a volume there (-v pqf-data:/var/lib/pqf-bot), or use PostgreSQL, so the database
# outlives the container.
WORKDIR /var/lib/pqf-bot
USER pqf

EXPOSE 3978

# The slim image has no curl; Python is there already.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PQF_PORT', '3978'), timeout=4)"]

CMD ["pqf-bot", "serve"]
