#!/usr/bin/env bash
# Run the bot and the Microsoft 365 Agents Playground (a local Teams) together; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

BOT_PORT="${PQF_PORT:-3978}"
PLAYGROUND_PORT="${PLAYGROUND_PORT:-56150}"
mkdir -p data

.venv/bin/pqf-bot serve --port "$BOT_PORT" &
bot=$!
stop() { kill "$bot" "${playground:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT
trap 'echo; echo "Stopping."; exit 0' INT TERM

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$BOT_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$bot" 2>/dev/null || { echo "The bot did not start; see the messages above." >&2; exit 1; }
  sleep 0.2
done

TEAMSAPPTESTER_BROWSER=none M365_AGENTS_PLAYGROUND_CONFIG_PATH="$PWD/.m365agentsplayground.yml" \
  node node_modules/@microsoft/m365agentsplayground/cli.js \
  -e "http://127.0.0.1:$BOT_PORT/api/messages" -c msteams -p "$PLAYGROUND_PORT" --disable-telemetry \
  >data/playground.log 2>&1 &
playground=$!

for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$PLAYGROUND_PORT/_internal/v1/config" >/dev/null 2>&1 && break
  kill -0 "$playground" 2>/dev/null || { echo "The playground did not start; see data/playground.log." >&2; exit 1; }
  sleep 0.2
done

cat <<TXT

  The audit bot is running with a local Teams (the Microsoft 365 Agents Playground).

  Open  http://localhost:$PLAYGROUND_PORT  in your browser.

  You are signed in as ${SIGNED_IN_AS:-alexw@example.com} (another role: make run AS=meganb@example.com).
  Press Ctrl-C to stop.

TXT
wait "$bot"
