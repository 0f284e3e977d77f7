#!/usr/bin/env bash
# Start the action server, the widget's demo page (http://localhost:$WIDGET_PORT, default
# 8080), the staff console (http://localhost:$CONSOLE_PORT, default 8090), then the Rasa
# server (REST webhook, socket.io, HTTP API on $RASA_PORT, default 5005) or, with `shell`,
# a terminal chat. Ctrl-C (or SIGTERM) stops them all.
# The action server listens on 127.0.0.1:$ACTIONS_PORT (default 5055) only and runs no action
# without $ACTIONS_SECRET (a random one per start when unset); Rasa gets both through the
# endpoints file written from $ENDPOINTS (default endpoints.yml) by scripts/write_endpoints.py.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
RASA_PORT=${RASA_PORT:-5005}
ACTIONS_PORT=${ACTIONS_PORT:-5055}
MODEL=${MODEL:-models/zhuqi.tar.gz}
WIDGET_PORT=${WIDGET_PORT:-8080}
CONSOLE_PORT=${CONSOLE_PORT:-8090}
ENDPOINTS=${ENDPOINTS:-endpoints.yml}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# No usage data leaves a government service by default; set it to true to opt in.
export RASA_TELEMETRY_ENABLED=${RASA_TELEMETRY_ENABLED:-false}

[ -f "$MODEL" ] || { echo "no model at $MODEL: run 'make setup' (or 'make train') first" >&2; exit 1; }

actions_pid="" widget_pid="" rasa_pid="" console_pid="" credentials="" endpoints=""
stop() {
  kill $actions_pid $widget_pid $rasa_pid $console_pid 2>/dev/null || true
  rm -f ${credentials:+"$credentials"} ${endpoints:+"$endpoints"}
}
trap stop EXIT
trap 'stop; exit 143' INT TERM

# the secret Rasa shows the action server: to the action server in its environment, to Rasa in
# the endpoints file; never on a command line, which `ps` shows to every user
ACTIONS_SECRET=${ACTIONS_SECRET:-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')}
endpoints=$(mktemp "${TMPDIR:-/tmp}/endpoints.XXXXXX.yml")  # mode 600: it holds the secret
ACTIONS_SECRET="$ACTIONS_SECRET" "$VENV/bin/python" scripts/write_endpoints.py "$ENDPOINTS" "$ACTIONS_PORT" > "$endpoints"

start_actions() {
  ACTIONS_SECRET="$ACTIONS_SECRET" "$VENV/bin/python" -m actions.server --host 127.0.0.1 --port "$ACTIONS_PORT" &
  actions_pid=$!
}
start_actions
# the widget and a demo page that embeds it like a customer's page: http://localhost:$WIDGET_PORT/
"$VENV/bin/python" -m http.server "$WIDGET_PORT" --bind "${WIDGET_BIND:-127.0.0.1}" --directory widget >/dev/null 2>&1 &
widget_pid=$!

if [ "${1:-}" = "shell" ]; then
  "$VENV/bin/rasa" shell --model "$MODEL" --endpoints "$endpoints"
  exit
fi

# credentials.yml, plus each WeChat channel whose token is set (its settings come from the environment)
credentials=$(mktemp "${TMPDIR:-/tmp}/credentials.XXXXXX.yml")
cp credentials.yml "$credentials"
[ -n "${WECHAT_TOKEN:-}" ] && printf 'channels.wechat.WeChatInput:\n' >> "$credentials"
[ -n "${WECOM_TOKEN:-}" ] && printf 'channels.wecom.WeComInput:\n' >> "$credentials"

args=(run --model "$MODEL" --port "$RASA_PORT" --enable-api --credentials "$credentials" --endpoints "$endpoints")
if [ -n "${RASA_AUTH_TOKEN:-}" ]; then
  args+=(--auth-token "$RASA_AUTH_TOKEN")
else
  # without a token the HTTP API (trackers, events, model) answers this machine only
  args+=(--interface 127.0.0.1)
  echo "note: RASA_AUTH_TOKEN is not set: the HTTP API is open and bound to 127.0.0.1 only; set it anywhere but a laptop" >&2
fi
"$VENV/bin/rasa" "${args[@]}" &
rasa_pid=$!
# the staff console: its own app, reaching Rasa through the HTTP API (accounts: make staff).
# If it cannot start (its port is taken, say) it says so and the assistant goes on answering.
start_console() {
  RASA_URL="http://127.0.0.1:$RASA_PORT" CONSOLE_PORT="$CONSOLE_PORT" "$VENV/bin/python" -m console &
  console_pid=$!
}
start_console
echo "widget demo: http://localhost:$WIDGET_PORT/ · staff console: http://localhost:$CONSOLE_PORT/ (accounts: make staff)" >&2
# Supervise: Rasa stopping stops everything; the action server or the console stopping is
# restarted after RESTART_SECONDS (meanwhile Rasa apologises for the actions it cannot run).
# One that stops within 10 s of its start (its port is taken, say) is not tried again.
RESTART_SECONDS=${RESTART_SECONDS:-2}
actions_started=$SECONDS console_started=$SECONDS
while true; do
  watched="$rasa_pid"
  [ -n "$actions_pid" ] && watched="$watched $actions_pid"
  [ -n "$console_pid" ] && watched="$watched $console_pid"
  wait -n $watched || true
  kill -0 "$rasa_pid" 2>/dev/null || break
  if [ -n "$actions_pid" ] && ! kill -0 "$actions_pid" 2>/dev/null; then
    if (( SECONDS - actions_started < 10 )); then
      echo "run.sh: the action server stopped right after its start (port $ACTIONS_PORT taken?); not restarted" >&2
      actions_pid=""
    else
      echo "run.sh: the action server stopped; restarting it in ${RESTART_SECONDS} s" >&2
      sleep "$RESTART_SECONDS"; start_actions; actions_started=$SECONDS
    fi
  fi
  if [ -n "$console_pid" ] && ! kill -0 "$console_pid" 2>/dev/null; then
    if (( SECONDS - console_started < 10 )); then
      echo "run.sh: the console stopped right after its start; the assistant goes on without it" >&2
      console_pid=""
    else
      echo "run.sh: the console stopped; restarting it in ${RESTART_SECONDS} s" >&2
      sleep "$RESTART_SECONDS"; start_console; console_started=$SECONDS
    fi
  fi
done
