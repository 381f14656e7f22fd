#!/usr/bin/env bash
# Real Kafka (KRaft) and Elasticsearch on this machine, from Maven Central, for development,
# tests and CI.   scripts/services.sh up|down [kafka] [es] [rsyslog]  |  status  |  logs [lines]
#
# With --cluster (or the word cluster), the same commands act on a three-broker Kafka and a
# two-node Elasticsearch on other ports: see scripts/services_cluster.sh. With --secure (or the
# word secure), they act on a second, secured pair on other ports (TLS, SCRAM, ACLs, file-realm
# users and roles): see scripts/services_secure.sh. The plain services are not touched by either.
#
# `up` also unpacks rsyslog (the Debian packages, extracted under $SOCPIPE_SERVICES_DIR, not
# installed system-wide, so no system syslog daemon is started): the forwarding tests start
# their own rsyslogd with a TLS listener from there.
#
# Versions are pinned; downloads are cached under $SOCPIPE_SERVICES_DIR (default
# /var/lib/socpipe-services, outside any home folder: Elasticsearch runs as its own user and
# must be able to enter it). `up` is idempotent and returns when both answer real requests.
set -euo pipefail

KAFKA_VERSION=4.1.1
ES_VERSION=9.5.0
SVC=${SOCPIPE_SERVICES_DIR:-/var/lib/socpipe-services}
KAFKA_DIR=$SVC/kafka
ES_DIR=$SVC/es
ES_HOME=$ES_DIR/elasticsearch-$ES_VERSION
ES_USER=socpipe-es
KAFKA_PORT=${SOCPIPE_KAFKA_PORT:-9092}
CONTROLLER_PORT=${SOCPIPE_KAFKA_CONTROLLER_PORT:-9093}
ES_PORT=${SOCPIPE_ES_PORT:-9200}
MVN=(mvn -B -ntp -q)
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

RSYSLOG_DIR=$SVC/rsyslog
RSYSLOG_PACKAGES=(rsyslog rsyslog-openssl libestr0 libfastjson4 liblognorm5)

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The newest JDK under /usr/lib/jvm whose major version is at least $1.
find_java() {
  local minimum=$1 best="" best_major=0 home major
  for home in /usr/lib/jvm/*/; do
    [ -x "$home/bin/java" ] || continue
    major=$("$home/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    major=${major%%.*}
    if [ -n "$major" ] && [ "$major" -ge "$minimum" ] && [ "$major" -gt "$best_major" ]; then
      best=${home%/}; best_major=$major
    fi
  done
  [ -n "$best" ] || die "no Java >= $minimum under /usr/lib/jvm"
  echo "$best"
}

# A pid file names a live process of ours only if that pid still runs the expected program:
# after a machine or session restart the number may belong to something else.
alive() {
  local pidfile=$1 marker=${2:-}
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  [ -z "$marker" ] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$marker"
}

fetch_kafka() {
  local libs=$KAFKA_DIR/libs-$KAFKA_VERSION
  [ -f "$libs/kafka_2.13-$KAFKA_VERSION.jar" ] && return
  log "resolving Kafka $KAFKA_VERSION from Maven Central"
  mkdir -p "$KAFKA_DIR"
  # Kafka's log4j2 binding is a build-time dependency, absent from its POM: named here.
  cat > "$KAFKA_DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
 <groupId>local.socpipe</groupId><artifactId>kafka-libs</artifactId><version>1</version><packaging>pom</packaging>
 <dependencies>
  <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
  <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
  <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
  <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
 </dependencies></project>
POM
  "${MVN[@]}" -f "$KAFKA_DIR/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$libs.partial"
  mv "$libs.partial" "$libs"
}

# Kafka's logging: to stderr (which the start commands send to a log file).
write_kafka_log4j() {
  cat > "$1" <<'PROPS'
appender.console.type=Console
appender.console.name=STDERR
appender.console.target=SYSTEM_ERR
appender.console.layout.type=PatternLayout
appender.console.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.console.ref=STDERR
PROPS
}

configure_kafka() {
  mkdir -p "$KAFKA_DIR/data"
  write_kafka_log4j "$KAFKA_DIR/log4j2.properties"
  cat > "$KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
}

kafka_java() {
  local java_home
  java_home=$(find_java 17)
  KAFKA_CMD=("$java_home/bin/java" -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties"
    -cp "$KAFKA_DIR/libs-$KAFKA_VERSION/*")
}

start_kafka() {
  if alive "$KAFKA_DIR/kafka.pid" kafka.Kafka; then log "Kafka already running"; return; fi
  fetch_kafka
  configure_kafka
  kafka_java
  [ -s "$KAFKA_DIR/cluster.id" ] || python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' > "$KAFKA_DIR/cluster.id"
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    "${KAFKA_CMD[@]}" kafka.tools.StorageTool format --standalone --ignore-formatted \
      -t "$(cat "$KAFKA_DIR/cluster.id")" -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1 \
      || { cat "$KAFKA_DIR/format.log" >&2; die "Kafka storage format failed"; }
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  nohup "${KAFKA_CMD[@]}" kafka.Kafka "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/kafka.log" 2>&1 &
  echo $! > "$KAFKA_DIR/kafka.pid"
}

fetch_es() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return
  log "resolving Elasticsearch $ES_VERSION from Maven Central"
  mkdir -p "$ES_DIR/dist"
  "${MVN[@]}" "$DEPENDENCY_PLUGIN:copy" \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$ES_DIR/dist"
  if ! command -v unzip >/dev/null; then
    command -v apt-get >/dev/null || die "unzip is needed"
    log "installing unzip"
    apt-get update -qq && apt-get install -y -qq unzip >/dev/null
  fi
  # unzip keeps the file modes the distribution needs; Python's zipfile would not.
  unzip -q -o "$ES_DIR/dist/elasticsearch-$ES_VERSION.zip" -d "$ES_DIR"
}

configure_es() {
  mkdir -p "$ES_DIR/data" "$ES_DIR/logs"
  cat > "$ES_HOME/config/elasticsearch.yml" <<YML
cluster.name: socpipe-dev
node.name: es1
path.data: $ES_DIR/data
path.logs: $ES_DIR/logs
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: 9300
discovery.type: single-node
xpack.security.enabled: false
cluster.routing.allocation.disk.watermark.low: 1b
cluster.routing.allocation.disk.watermark.high: 1b
cluster.routing.allocation.disk.watermark.flood_stage: 1b
indices.merge.disk.watermark.high: 1b
action.destructive_requires_name: false
YML
  id -u "$ES_USER" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  chown -R "$ES_USER:$ES_USER" "$ES_DIR"
  # The user must be able to walk down to the folder.
  local dir=$ES_DIR
  while [ "$dir" != "/" ]; do dir=$(dirname "$dir"); chmod o+x "$dir" 2>/dev/null || true; done
}

start_es() {
  if alive "$ES_DIR/es.pid" org.elasticsearch; then log "Elasticsearch already running"; return; fi
  fetch_es
  configure_es
  local java_home
  java_home=$(find_java 21)
  log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT (Java: $java_home)"
  rm -f "$ES_DIR/es.pid"
  runuser -u "$ES_USER" -- env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms768m -Xmx768m" \
    "$ES_HOME/bin/elasticsearch" -d -p "$ES_DIR/es.pid" >"$ES_DIR/startup.log" 2>&1 \
    || { tail -n 40 "$ES_DIR/startup.log" >&2; die "Elasticsearch did not start"; }
}

# Whether the broker on 127.0.0.1:$1 (default $KAFKA_PORT) serves requests.
kafka_answers() {
  python3 - "${1:-$KAFKA_PORT}" <<'PY' 2>/dev/null
import socket, struct, sys
# A real ApiVersions request (key 18, version 0): answered only by a broker that is serving.
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as conn:
    client = b"services"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    conn.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", conn.recv(4))[0]
    reply = conn.recv(size)
    sys.exit(0 if struct.unpack(">h", reply[4:6])[0] == 0 else 1)
PY
}

wait_kafka() {
  local deadline=$((SECONDS + 120))
  until kafka_answers
  do
    alive "$KAFKA_DIR/kafka.pid" kafka.Kafka || { tail -n 40 "$KAFKA_DIR/kafka.log" >&2; die "Kafka exited"; }
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$KAFKA_DIR/kafka.log" >&2; die "Kafka not ready after 120 s"; }
    sleep 1
  done
  log "Kafka ready"
}

wait_es() {
  local deadline=$((SECONDS + 240))
  until curl -fsS "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$ES_DIR/logs/socpipe-dev.log" >&2 2>/dev/null; die "Elasticsearch not ready after 240 s"; }
    sleep 2
  done
  log "Elasticsearch ready"
}

stop_one() {
  local name=$1 pidfile=$2 grace=$3 marker=$4 pid
  alive "$pidfile" "$marker" || { log "$name not running"; rm -f "$pidfile"; return; }
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq "$grace"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in ${grace}s: killing"; kill -KILL "$pid"; fi
  rm -f "$pidfile"
  log "$name stopped"
}

status() {
  local code=0
  if alive "$KAFKA_DIR/kafka.pid" kafka.Kafka; then echo "kafka: running (pid $(cat "$KAFKA_DIR/kafka.pid"), 127.0.0.1:$KAFKA_PORT)"; else echo "kafka: stopped"; code=1; fi
  if alive "$ES_DIR/es.pid" org.elasticsearch; then echo "elasticsearch: running (pid $(cat "$ES_DIR/es.pid"), 127.0.0.1:$ES_PORT)"; else echo "elasticsearch: stopped"; code=1; fi
  return $code
}

command=${1:-}
shift || true
# Modes other than the plain one are flags anywhere after the command.
mode=plain
arguments=()
for argument in "$@"; do
  case "$argument" in
    --cluster|cluster) mode=cluster ;;
    --secure|secure) mode=secure ;;
    *) arguments+=("$argument") ;;
  esac
done
set -- ${arguments[@]+"${arguments[@]}"}
if [ "$mode" = cluster ]; then
  # shellcheck source=scripts/services_cluster.sh
  source "$(dirname "${BASH_SOURCE[0]}")/services_cluster.sh"
  cluster_main "$command" "$@"
  exit
fi
if [ "$mode" = secure ]; then
  # shellcheck source=scripts/services_secure.sh
  source "$(dirname "${BASH_SOURCE[0]}")/services_secure.sh"
  secure_main "$command" "$@"
  exit
fi
# up/down act on the services named after the command, or on both.
services=(kafka es rsyslog)
fetch_rsyslog() {
  [ -x "$RSYSLOG_DIR/root/usr/sbin/rsyslogd" ] && return
  log "unpacking rsyslog (${RSYSLOG_PACKAGES[*]}) from the Debian archive"
  mkdir -p "$RSYSLOG_DIR/debs" "$RSYSLOG_DIR/root"
  (cd "$RSYSLOG_DIR/debs" && apt-get download "${RSYSLOG_PACKAGES[@]}" >/dev/null 2>&1) \
    || { apt-get update -qq >/dev/null && (cd "$RSYSLOG_DIR/debs" && apt-get download "${RSYSLOG_PACKAGES[@]}" >/dev/null); } \
    || die "cannot download rsyslog packages with apt-get"
  for deb in "$RSYSLOG_DIR"/debs/*.deb; do dpkg-deb -x "$deb" "$RSYSLOG_DIR/root"; done
  [ -x "$RSYSLOG_DIR/root/usr/sbin/rsyslogd" ] || die "rsyslogd missing after unpacking"
}

if [[ "$command" == up || "$command" == down ]] && [ $# -gt 0 ]; then
  services=("$@")
  for name in "${services[@]}"; do
    case "$name" in kafka|es|rsyslog) ;; *) die "unknown service $name (kafka, es, rsyslog)";; esac
  done
fi
has() { [[ " ${services[*]} " == *" $1 "* ]]; }

case "$command" in
  up)
    mkdir -p "$SVC"
    if has rsyslog; then fetch_rsyslog; fi
    if has kafka; then start_kafka; fi
    if has es; then start_es; fi
    if has kafka; then wait_kafka; fi
    if has es; then wait_es; fi
    ;;
  down)
    if has kafka; then stop_one Kafka "$KAFKA_DIR/kafka.pid" 30 kafka.Kafka; fi
    if has es; then stop_one Elasticsearch "$ES_DIR/es.pid" 60 org.elasticsearch; fi
    ;;
  status) status ;;
  logs) tail -n "${1:-50}" "$KAFKA_DIR/kafka.log" "$ES_DIR/logs/socpipe-dev.log" ;;
  *) echo "usage: $0 up|down [kafka] [es] | status | logs [lines]" >&2; exit 2 ;;
esac
