#!/usr/bin/env bash
# The console with demo data, in one command (`make console-demo` runs it):
#   1. Kafka and Elasticsearch (scripts/services.sh up), topics and index templates;
#   2. the alerts of two agencies: samples/ scanned once as so-tttt and once as so-yte,
#      loaded into the alerts index (`socpipe alerts load`, idempotent: run it again freely);
#   3. four users: admin (admin), central (central-analyst), ana (agency-analyst of so-tttt)
#      and viewer (agency-viewer of so-yte), all with the password in $SOCPIPE_DEMO_PASSWORD
#      (default: socpipe-demo-password);
#   4. the console on http://127.0.0.1:8080/ (or $SOCPIPE_DEMO_LISTEN) until Ctrl-C.
# Uses config/socpipe.yml unless $SOCPIPE_CONFIG names another file.
set -euo pipefail
bin=${1:-.venv/bin}
cd "$(dirname "$0")/.."
config=${SOCPIPE_CONFIG:-config/socpipe.yml}
password=${SOCPIPE_DEMO_PASSWORD:-socpipe-demo-password}
listen=${SOCPIPE_DEMO_LISTEN:-127.0.0.1:8080}

bash scripts/services.sh up
"$bin/socpipe" setup --config "$config"
mkdir -p out
for agency in so-tttt so-yte; do
  "$bin/socpipe" scan samples --agency "$agency" --timezone Asia/Ho_Chi_Minh --no-progress \
    --out "out/demo-alerts-$agency.jsonl" 2>/dev/null
  "$bin/socpipe" alerts load "out/demo-alerts-$agency.jsonl" --config "$config"
done
add_user() {  # name role [agency]; an existing user is left as it is
  local name=$1 role=$2 agency=${3:-}
  if "$bin/socpipe" users list --config "$config" | awk '{print $1}' | grep -qx "$name"; then
    echo "user $name exists already"
    return
  fi
  printf '%s\n' "$password" | "$bin/socpipe" users add "$name" --role "$role" \
    ${agency:+--agency "$agency"} --config "$config"
}
add_user admin admin
add_user central central-analyst
add_user ana agency-analyst so-tttt
add_user viewer agency-viewer so-yte
echo
echo "Open http://$listen/ and log in as central, ana, viewer or admin (password: $password)."
exec "$bin/socpipe" console --config "$config" --listen "$listen"
