# Secure mode of scripts/services.sh (sourced by it; not run on its own):
#   scripts/services.sh up|down|status|logs --secure     (or: up secure)
#
# A second Kafka and Elasticsearch, beside the plain ones (which keep running), on their own
# ports and data folders, configured the way production should be:
#   Kafka 127.0.0.1:19092  SASL_SSL only (TLS + SCRAM-SHA-512), the controller on 19093 over
#                          mutual TLS; ACLs per principal (StandardAuthorizer, deny by default):
#                            admin               super user (creates topics: socpipe setup)
#                            socpipe-daemon      reads soc.events.*; reads and writes soc.alerts,
#                                                soc.incidents, soc.forwarding; writes
#                                                soc.deadletter; groups socpipe-*
#                            collector-<agency>  writes soc.events.<agency>, nothing else
#   Elasticsearch https://127.0.0.1:19200 (transport 19300), TLS on HTTP and transport, users
#   from the file realm: socpipe-admin (superuser), socpipe-writer (role socpipe_writer: creates
#   documents and indices in soc-*, merges incidents and suppression counts, reads the ledger;
#   nothing else), socpipe-console (role socpipe_console: reads soc-*, updates alerts and
#   incidents (triage), writes its own soc-console-*).
# Certificates come from a CA the script makes with openssl; passwords are generated into
# $SECURE_DIR/secrets.env (root only, mode 0600), never into the repository. Client
# configurations for socpipe (no secrets in them: the names of the variables of secrets.env)
# are written to $SECURE_DIR/clients/. Agencies: $SOCPIPE_SECURE_AGENCIES (default
# "agency-a agency-b"); adding one later and running `up --secure` again adds its principal.

SECURE_DIR=$SVC/secure
SECURE_CA=$SECURE_DIR/ca
SECURE_KAFKA_DIR=$SECURE_DIR/kafka
SECURE_ES_DIR=$SECURE_DIR/es
SECURE_ES_CONF=$SECURE_ES_DIR/config
SECURE_CLIENTS=$SECURE_DIR/clients
SECURE_SECRETS=$SECURE_DIR/secrets.env
SECURE_KAFKA_PORT=${SOCPIPE_SECURE_KAFKA_PORT:-19092}
SECURE_CONTROLLER_PORT=${SOCPIPE_SECURE_KAFKA_CONTROLLER_PORT:-19093}
SECURE_ES_PORT=${SOCPIPE_SECURE_ES_PORT:-19200}
SECURE_ES_TRANSPORT_PORT=${SOCPIPE_SECURE_ES_TRANSPORT_PORT:-19300}
read -r -a SECURE_AGENCIES <<<"${SOCPIPE_SECURE_AGENCIES:-agency-a agency-b}"
KAFKA_TOOLS_JAR=$KAFKA_DIR/tools-$KAFKA_VERSION/kafka-tools-$KAFKA_VERSION.jar

# SOCPIPE_SECURE_KAFKA_COLLECTOR_AGENCY_A: the variable prefix of agency-a's collector.
secure_variable() { printf 'SOCPIPE_SECURE_%s' "$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"; }

secure_check_agencies() {
  local agency
  for agency in "${SECURE_AGENCIES[@]}"; do
    [[ "$agency" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || die "agency id '$agency' is not 1-63 of a-z 0-9 - (it becomes a topic name)"
  done
}

# One user and password per principal, generated once; new agencies get theirs appended.
secure_secrets() {
  local agency
  mkdir -p "$SECURE_DIR"
  chmod 0755 "$SECURE_DIR"
  (
    umask 077
    [ -f "$SECURE_SECRETS" ] || : >"$SECURE_SECRETS"
    secure_add_secret KAFKA_ADMIN admin
    secure_add_secret KAFKA_DAEMON socpipe-daemon
    for agency in "${SECURE_AGENCIES[@]}"; do
      secure_add_secret "KAFKA_COLLECTOR_$agency" "collector-$agency"
    done
    secure_add_secret ES_ADMIN socpipe-admin
    secure_add_secret ES_WRITER socpipe-writer
    secure_add_secret ES_CONSOLE socpipe-console
    grep -q '^SOCPIPE_SECURE_KEYSTORE_PASSWORD=' "$SECURE_SECRETS" \
      || echo "SOCPIPE_SECURE_KEYSTORE_PASSWORD=$(openssl rand -hex 24)" >>"$SECURE_SECRETS"
  )
  chown root:root "$SECURE_SECRETS"
  chmod 0600 "$SECURE_SECRETS"
  # shellcheck disable=SC1090
  set -a; source "$SECURE_SECRETS"; set +a
}

secure_add_secret() {
  local name prefix=$1 user=$2
  name=$(secure_variable "$prefix")
  grep -q "^${name}_USER=" "$SECURE_SECRETS" && return
  printf '%s_USER=%s\n%s_PASSWORD=%s\n' "$name" "$user" "$name" "$(openssl rand -hex 24)" >>"$SECURE_SECRETS"
}

# A CA, and one certificate for both servers (127.0.0.1 and localhost), made once.
secure_certs() {
  [ -s "$SECURE_CA/server.crt" ] && return
  log "making the secure services' CA and server certificate (openssl)"
  mkdir -p "$SECURE_CA"
  chmod 0700 "$SECURE_CA"
  openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=socpipe secure services CA" \
    -keyout "$SECURE_CA/ca.key" -out "$SECURE_CA/ca.crt" 2>/dev/null
  openssl req -newkey rsa:3072 -nodes -subj "/CN=socpipe-services" \
    -keyout "$SECURE_CA/server.key" -out "$SECURE_CA/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$SECURE_CA/server.ext"
  openssl x509 -req -in "$SECURE_CA/server.csr" -CA "$SECURE_CA/ca.crt" -CAkey "$SECURE_CA/ca.key" \
    -CAcreateserial -days 825 -extfile "$SECURE_CA/server.ext" -out "$SECURE_CA/server.crt" 2>/dev/null
  # What clients need to verify the servers: public.
  install -m 0644 "$SECURE_CA/ca.crt" "$SECURE_DIR/ca.crt"
}

# kafka-tools holds the ACL and user commands; its other dependencies are the broker's.
secure_fetch_kafka_tools() {
  [ -f "$KAFKA_TOOLS_JAR" ] && return
  log "resolving kafka-tools $KAFKA_VERSION from Maven Central"
  "${MVN[@]}" "$DEPENDENCY_PLUGIN:copy" -Dartifact="org.apache.kafka:kafka-tools:$KAFKA_VERSION" \
    -DoutputDirectory="$(dirname "$KAFKA_TOOLS_JAR")"
}

secure_kafka_java() {
  local java_home
  java_home=$(find_java 17)
  SECURE_KAFKA_CMD=("$java_home/bin/java" -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$SECURE_KAFKA_DIR/log4j2.properties"
    -cp "$KAFKA_DIR/libs-$KAFKA_VERSION/*")
  SECURE_KAFKA_TOOL=("$java_home/bin/java" -Xmx256m -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$SECURE_KAFKA_DIR/log4j2-tools.properties"
    -cp "$KAFKA_DIR/libs-$KAFKA_VERSION/*:$KAFKA_TOOLS_JAR")
}

secure_configure_kafka() {
  mkdir -p "$SECURE_KAFKA_DIR/data"
  chmod 0700 "$SECURE_KAFKA_DIR"
  local store=$SECURE_KAFKA_DIR/server.p12
  if [ ! -s "$store" ] || [ "$store" -ot "$SECURE_CA/server.crt" ]; then
    openssl pkcs12 -export -name kafka -in "$SECURE_CA/server.crt" -inkey "$SECURE_CA/server.key" \
      -certfile "$SECURE_CA/ca.crt" -passout env:SOCPIPE_SECURE_KEYSTORE_PASSWORD -out "$store"
  fi
  cat >"$SECURE_KAFKA_DIR/log4j2.properties" <<'PROPS'
appender.console.type=Console
appender.console.name=STDERR
appender.console.target=SYSTEM_ERR
appender.console.layout.type=PatternLayout
appender.console.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.console.ref=STDERR
PROPS
  sed 's/^rootLogger.level=INFO$/rootLogger.level=WARN/' "$SECURE_KAFKA_DIR/log4j2.properties" \
    >"$SECURE_KAFKA_DIR/log4j2-tools.properties"
  local admin_user=$SOCPIPE_SECURE_KAFKA_ADMIN_USER admin_password=$SOCPIPE_SECURE_KAFKA_ADMIN_PASSWORD
  (
    umask 077
    cat >"$SECURE_KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$SECURE_CONTROLLER_PORT
listeners=SASL_SSL://127.0.0.1:$SECURE_KAFKA_PORT,CONTROLLER://127.0.0.1:$SECURE_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$SECURE_KAFKA_PORT,CONTROLLER://127.0.0.1:$SECURE_CONTROLLER_PORT
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$admin_user" password="$admin_password";
ssl.keystore.type=PKCS12
ssl.keystore.location=$store
ssl.keystore.password=$SOCPIPE_SECURE_KEYSTORE_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_CA/ca.crt
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$admin_user;User:CN=socpipe-services
log.dirs=$SECURE_KAFKA_DIR/data
num.partitions=2
offsets.topic.replication.factor=1
offsets.topic.num.partitions=2
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
    cat >"$SECURE_KAFKA_DIR/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$admin_user" password="$admin_password";
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_CA/ca.crt
PROPS
  )
}

# Every principal but admin: the daemon and one collector per agency.
secure_kafka_principals() {
  local agency
  echo KAFKA_DAEMON
  for agency in "${SECURE_AGENCIES[@]}"; do echo "KAFKA_COLLECTOR_$agency"; done
}

secure_start_kafka() {
  if alive "$SECURE_KAFKA_DIR/kafka.pid" kafka.Kafka; then log "secure Kafka already running"; return; fi
  fetch_kafka
  secure_fetch_kafka_tools
  secure_configure_kafka
  secure_kafka_java
  [ -s "$SECURE_KAFKA_DIR/cluster.id" ] || python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$SECURE_KAFKA_DIR/cluster.id"
  if [ ! -f "$SECURE_KAFKA_DIR/data/meta.properties" ]; then
    # KRaft keeps SCRAM credentials in its metadata log: the first ones are written at format.
    local scram=() principal name
    scram+=(--add-scram "SCRAM-SHA-512=[name=$SOCPIPE_SECURE_KAFKA_ADMIN_USER,password=$SOCPIPE_SECURE_KAFKA_ADMIN_PASSWORD]")
    for principal in $(secure_kafka_principals); do
      name=$(secure_variable "$principal")
      scram+=(--add-scram "SCRAM-SHA-512=[name=$(printenv "${name}_USER"),password=$(printenv "${name}_PASSWORD")]")
    done
    "${SECURE_KAFKA_CMD[@]}" kafka.tools.StorageTool format --standalone --ignore-formatted \
      -t "$(cat "$SECURE_KAFKA_DIR/cluster.id")" -c "$SECURE_KAFKA_DIR/server.properties" "${scram[@]}" \
      >"$SECURE_KAFKA_DIR/format.log" 2>&1 || { cat "$SECURE_KAFKA_DIR/format.log" >&2; die "secure Kafka storage format failed"; }
    secure_kafka_principals | sort >"$SECURE_KAFKA_DIR/principals.known"
  fi
  log "starting secure Kafka $KAFKA_VERSION on 127.0.0.1:$SECURE_KAFKA_PORT (SASL_SSL)"
  nohup "${SECURE_KAFKA_CMD[@]}" kafka.Kafka "$SECURE_KAFKA_DIR/server.properties" >"$SECURE_KAFKA_DIR/kafka.log" 2>&1 &
  echo $! >"$SECURE_KAFKA_DIR/kafka.pid"
}

# Ready when a TLS connection verified against our CA answers an ApiVersions request (which
# Kafka serves before SASL authentication).
secure_wait_kafka() {
  local deadline=$((SECONDS + 150))
  until python3 - "$SECURE_KAFKA_PORT" "$SECURE_DIR/ca.crt" <<'PY' 2>/dev/null
import socket, ssl, struct, sys
context = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as raw:
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        client = b"services"
        body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
        conn.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", conn.recv(4))[0]
        reply = conn.recv(size)
        sys.exit(0 if struct.unpack(">h", reply[4:6])[0] == 0 else 1)
PY
  do
    alive "$SECURE_KAFKA_DIR/kafka.pid" kafka.Kafka || { tail -n 40 "$SECURE_KAFKA_DIR/kafka.log" >&2; die "secure Kafka exited"; }
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$SECURE_KAFKA_DIR/kafka.log" >&2; die "secure Kafka not ready after 150 s"; }
    sleep 1
  done
  log "secure Kafka ready"
}

secure_kafka_admin() {
  "${SECURE_KAFKA_TOOL[@]}" "$@" --bootstrap-server "127.0.0.1:$SECURE_KAFKA_PORT" \
    --command-config "$SECURE_KAFKA_DIR/admin.properties"
}

# Principals of agencies added since the format, then every ACL (adding an ACL that exists
# changes nothing). Deny by default: what is not granted here is refused by the broker.
secure_kafka_grants() {
  local principal name user agency added=()
  secure_kafka_java
  [ -f "$SECURE_KAFKA_DIR/principals.known" ] || : >"$SECURE_KAFKA_DIR/principals.known"
  for principal in $(secure_kafka_principals | sort | comm -23 - "$SECURE_KAFKA_DIR/principals.known"); do
    name=$(secure_variable "$principal")
    user=$(printenv "${name}_USER")
    log "adding Kafka principal $user"
    secure_kafka_admin kafka.admin.ConfigCommand --alter --entity-type users --entity-name "$user" \
      --add-config "SCRAM-SHA-512=[password=$(printenv "${name}_PASSWORD")]" >/dev/null
    added+=("$principal")
  done
  [ ${#added[@]} -eq 0 ] || secure_kafka_principals | sort >"$SECURE_KAFKA_DIR/principals.known"
  # The grants below, as one line: granted again whenever they (or the principals) change.
  local spec="acls-v2 ${SECURE_AGENCIES[*]}"
  if [ -f "$SECURE_KAFKA_DIR/acls.done" ] && [ "$(cat "$SECURE_KAFKA_DIR/acls.done")" = "$spec" ] \
    && [ "$SECURE_KAFKA_DIR/acls.done" -nt "$SECURE_KAFKA_DIR/principals.known" ]; then
    return
  fi
  log "granting Kafka ACLs"
  local daemon="User:$SOCPIPE_SECURE_KAFKA_DAEMON_USER" acl=(org.apache.kafka.tools.AclCommand --add)
  secure_kafka_admin "${acl[@]}" --allow-principal "$daemon" --operation Read --operation Describe \
    --topic soc.events. --resource-pattern-type prefixed >/dev/null
  for topic in soc.alerts soc.incidents soc.forwarding; do
    secure_kafka_admin "${acl[@]}" --allow-principal "$daemon" --operation Read --operation Write \
      --operation Describe --topic "$topic" >/dev/null
  done
  secure_kafka_admin "${acl[@]}" --allow-principal "$daemon" --operation Write --operation Describe \
    --topic soc.deadletter >/dev/null
  secure_kafka_admin "${acl[@]}" --allow-principal "$daemon" --operation Read \
    --group socpipe- --resource-pattern-type prefixed >/dev/null
  for agency in "${SECURE_AGENCIES[@]}"; do
    name=$(secure_variable "KAFKA_COLLECTOR_$agency")
    secure_kafka_admin "${acl[@]}" --allow-principal "User:$(printenv "${name}_USER")" \
      --operation Write --operation Describe --topic "soc.events.$agency" >/dev/null
  done
  echo "$spec" >"$SECURE_KAFKA_DIR/acls.done"
}

secure_configure_es() {
  local java_home=$1
  mkdir -p "$SECURE_ES_CONF/certs" "$SECURE_ES_DIR/data" "$SECURE_ES_DIR/logs"
  for file in jvm.options log4j2.properties role_mapping.yml; do
    [ -f "$SECURE_ES_CONF/$file" ] || cp "$ES_HOME/config/$file" "$SECURE_ES_CONF/$file"
  done
  mkdir -p "$SECURE_ES_CONF/jvm.options.d"
  install -m 0640 "$SECURE_CA/server.key" "$SECURE_ES_CONF/certs/server.key"
  install -m 0644 "$SECURE_CA/server.crt" "$SECURE_ES_CONF/certs/server.crt"
  install -m 0644 "$SECURE_CA/ca.crt" "$SECURE_ES_CONF/certs/ca.crt"
  cat >"$SECURE_ES_CONF/elasticsearch.yml" <<YML
cluster.name: socpipe-secure
node.name: es-secure
path.data: $SECURE_ES_DIR/data
path.logs: $SECURE_ES_DIR/logs
network.host: 127.0.0.1
http.port: $SECURE_ES_PORT
transport.port: $SECURE_ES_TRANSPORT_PORT
discovery.type: single-node
xpack.security.enabled: true
xpack.security.authc.reserved_realm.enabled: false
xpack.security.authc.realms.file.file1.order: 0
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.key: certs/server.key
xpack.security.http.ssl.certificate: certs/server.crt
xpack.security.http.ssl.certificate_authorities: [certs/ca.crt]
xpack.security.transport.ssl.enabled: true
xpack.security.transport.ssl.verification_mode: full
xpack.security.transport.ssl.key: certs/server.key
xpack.security.transport.ssl.certificate: certs/server.crt
xpack.security.transport.ssl.certificate_authorities: [certs/ca.crt]
cluster.routing.allocation.disk.watermark.low: 1b
cluster.routing.allocation.disk.watermark.high: 1b
cluster.routing.allocation.disk.watermark.flood_stage: 1b
indices.merge.disk.watermark.high: 1b
action.destructive_requires_name: false
YML
  # The daemon adds documents and indices to soc-*, merges incident updates and suppression
  # hit counts (read + update), reads the forwarding ledger; the console reads soc-*, updates
  # alerts and incidents (triage) and keeps its own indices. Neither may delete anything, nor
  # touch an index outside soc-*. (Patterns with a * in the middle also match the indices of
  # a test run, such as soc-t1234-incidents.)
  cat >"$SECURE_ES_CONF/roles.yml" <<'YML'
socpipe_writer:
  indices:
    - names: ["soc-*"]
      privileges: [create_doc, create_index, auto_configure, view_index_metadata]
    - names: ["soc-*incidents*", "soc-console-*suppressions*"]
      privileges: [read, index]
    - names: ["soc-*forwarding*"]
      privileges: [read]
socpipe_console:
  indices:
    - names: ["soc-*"]
      privileges: [read, view_index_metadata]
    - names: ["soc-*alerts*", "soc-*incidents*"]
      privileges: [index]
    - names: ["soc-console-*"]
      privileges: [read, index, create_doc, create_index, auto_configure, view_index_metadata]
YML
  if [ ! -s "$SECURE_ES_CONF/users" ] || [ "$SECURE_ES_CONF/users" -ot "$SECURE_SECRETS" ]; then
    : >"$SECURE_ES_CONF/users"
    : >"$SECURE_ES_CONF/users_roles"
    local pair user variable role
    for pair in ES_ADMIN:superuser ES_WRITER:socpipe_writer ES_CONSOLE:socpipe_console; do
      variable=$(secure_variable "${pair%%:*}")
      role=${pair#*:}
      user=$(printenv "${variable}_USER")
      ES_JAVA_HOME="$java_home" ES_PATH_CONF="$SECURE_ES_CONF" "$ES_HOME/bin/elasticsearch-users" \
        useradd "$user" -p "$(printenv "${variable}_PASSWORD")" -r "$role" >/dev/null
    done
  fi
  chown -R "$ES_USER:$ES_USER" "$SECURE_ES_DIR"
  chmod 0750 "$SECURE_ES_DIR" "$SECURE_ES_CONF"
  chmod 0640 "$SECURE_ES_CONF/users" "$SECURE_ES_CONF/users_roles"
}

secure_start_es() {
  fetch_es
  id -u "$ES_USER" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  local java_home dir=$SECURE_DIR
  java_home=$(find_java 21)
  # Also while it runs: the file realm reloads roles.yml and users by itself.
  secure_configure_es "$java_home"
  if alive "$SECURE_ES_DIR/es.pid" org.elasticsearch; then log "secure Elasticsearch already running"; return; fi
  while [ "$dir" != "/" ]; do dir=$(dirname "$dir"); chmod o+x "$dir" 2>/dev/null || true; done
  log "starting secure Elasticsearch $ES_VERSION on https://127.0.0.1:$SECURE_ES_PORT"
  rm -f "$SECURE_ES_DIR/es.pid"
  runuser -u "$ES_USER" -- env ES_JAVA_HOME="$java_home" ES_PATH_CONF="$SECURE_ES_CONF" \
    ES_JAVA_OPTS="-Xms512m -Xmx512m" "$ES_HOME/bin/elasticsearch" -d -p "$SECURE_ES_DIR/es.pid" \
    >"$SECURE_ES_DIR/startup.log" 2>&1 \
    || { tail -n 40 "$SECURE_ES_DIR/startup.log" >&2; die "secure Elasticsearch did not start"; }
}

secure_wait_es() {
  local deadline=$((SECONDS + 240))
  until curl -fsS --cacert "$SECURE_DIR/ca.crt" \
    -u "$SOCPIPE_SECURE_ES_ADMIN_USER:$SOCPIPE_SECURE_ES_ADMIN_PASSWORD" \
    "https://127.0.0.1:$SECURE_ES_PORT/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$SECURE_ES_DIR/logs/socpipe-secure.log" >&2 2>/dev/null; die "secure Elasticsearch not ready after 240 s"; }
    sleep 2
  done
  log "secure Elasticsearch ready"
}

# socpipe configurations for each role, naming the variables of secrets.env (no secret in them).
secure_client_configs() {
  mkdir -p "$SECURE_CLIENTS"
  local agencies agency
  agencies=$(printf '%s, ' "${SECURE_AGENCIES[@]}")
  secure_client_config admin KAFKA_ADMIN ES_ADMIN "[${agencies%, }]"
  secure_client_config daemon KAFKA_DAEMON ES_WRITER "[]"
  secure_client_config console "" ES_CONSOLE "[]"
  for agency in "${SECURE_AGENCIES[@]}"; do
    secure_client_config "collector-$agency" "KAFKA_COLLECTOR_$agency" "" "[]"
  done
}

secure_client_config() {
  local role=$1 kafka=$2 es=$3 agencies=$4 kafka_user="null" kafka_password="null" es_user="null" es_password="null"
  if [ -n "$kafka" ]; then kafka_user=$(secure_variable "$kafka")_USER; kafka_password=$(secure_variable "$kafka")_PASSWORD; fi
  if [ -n "$es" ]; then es_user=$(secure_variable "$es")_USER; es_password=$(secure_variable "$es")_PASSWORD; fi
  cat >"$SECURE_CLIENTS/$role.yml" <<YML
# socpipe as $role on the secure services (scripts/services.sh up --secure). Secrets: the
# variables named here, from $SECURE_SECRETS (root only): set -a; . $SECURE_SECRETS; set +a
kafka:
  bootstrap_servers: ["127.0.0.1:$SECURE_KAFKA_PORT"]
  security_protocol: SASL_SSL
  ssl_cafile: $SECURE_DIR/ca.crt
  sasl_mechanism: SCRAM-SHA-512
  sasl_username_env: $kafka_user
  sasl_password_env: $kafka_password
  event_topics: per_agency
  agencies: $agencies
elasticsearch:
  hosts: ["https://127.0.0.1:$SECURE_ES_PORT"]
  ca_certs: $SECURE_DIR/ca.crt
  username_env: $es_user
  password_env: $es_password
YML
}

secure_status() {
  local code=0
  if alive "$SECURE_KAFKA_DIR/kafka.pid" kafka.Kafka; then echo "secure kafka: running (pid $(cat "$SECURE_KAFKA_DIR/kafka.pid"), SASL_SSL 127.0.0.1:$SECURE_KAFKA_PORT)"; else echo "secure kafka: stopped"; code=1; fi
  if alive "$SECURE_ES_DIR/es.pid" org.elasticsearch; then echo "secure elasticsearch: running (pid $(cat "$SECURE_ES_DIR/es.pid"), https://127.0.0.1:$SECURE_ES_PORT)"; else echo "secure elasticsearch: stopped"; code=1; fi
  echo "secrets: $SECURE_SECRETS; CA: $SECURE_DIR/ca.crt; client configurations: $SECURE_CLIENTS/"
  return $code
}

secure_main() {
  local command=$1
  shift
  case "$command" in
    status) secure_status; return ;;
    logs) tail -n "${1:-50}" "$SECURE_KAFKA_DIR/kafka.log" "$SECURE_ES_DIR/logs/socpipe-secure.log"; return ;;
  esac
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=(kafka es)
  local name
  for name in "${names[@]}"; do
    case "$name" in kafka|es) ;; *) die "unknown secure service $name (kafka, es)";; esac
  done
  secure_has() { [[ " ${names[*]} " == *" $1 "* ]]; }
  case "$command" in
    up)
      secure_check_agencies
      secure_secrets
      secure_certs
      if secure_has kafka; then secure_start_kafka; fi
      if secure_has es; then secure_start_es; fi
      if secure_has kafka; then secure_wait_kafka; secure_kafka_grants; fi
      if secure_has es; then secure_wait_es; fi
      secure_client_configs
      ;;
    down)
      if secure_has kafka; then stop_one "secure Kafka" "$SECURE_KAFKA_DIR/kafka.pid" 30 kafka.Kafka; fi
      if secure_has es; then stop_one "secure Elasticsearch" "$SECURE_ES_DIR/es.pid" 60 org.elasticsearch; fi
      ;;
    *) die "usage: $0 up|down [kafka] [es] --secure | status --secure | logs --secure [lines]" ;;
  esac
}
