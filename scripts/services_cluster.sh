# Cluster mode of scripts/services.sh (sourced by it; not run on its own):
#   scripts/services.sh up|down|status|logs --cluster     (or: up cluster)
#
# A small real cluster beside the single-node services (which keep running), on its own
# loopback ports and data folders under $SOCPIPE_SERVICES_DIR/cluster:
#   Kafka 4.x, three nodes, each broker and KRaft controller (a quorum of three voters):
#     brokers 127.0.0.1:29092, :29093, :29094; controllers :29192, :29193, :29194;
#     new topics get 3 replicas, min.insync.replicas 2 (a write is acknowledged by two of the
#     three), no unclean leader election: losing any one node loses nothing and stops nothing.
#   Elasticsearch, two nodes, cluster socpipe-cluster:
#     es-c1 http 127.0.0.1:29200 (transport 29300): master, data, ingest;
#     es-c2 http 127.0.0.1:29201 (transport 29301): data, ingest.
#     With replicas 1 every shard has a copy on each node, so losing es-c2 loses nothing.
#     Two master-eligible nodes cannot survive the loss of either (a majority of two is two),
#     so es-c2 is not master-eligible: the cluster survives losing es-c2, not es-c1. A
#     production cluster has three master-eligible nodes (docs/cluster.md).
# Every JVM gets a 512 MB heap. `up --cluster` starts whichever node is not running, so it
# also brings back a node that was stopped or killed. A socpipe configuration for the
# cluster is written to $CLUSTER_DIR/socpipe-cluster.yml.

CLUSTER_DIR=$SVC/cluster
CLUSTER_KAFKA_NODES=(1 2 3)
CLUSTER_ES_NODES=(1 2)
CLUSTER_KAFKA_BASE_PORT=${SOCPIPE_CLUSTER_KAFKA_BASE_PORT:-29091}
CLUSTER_CONTROLLER_BASE_PORT=${SOCPIPE_CLUSTER_CONTROLLER_BASE_PORT:-29191}
CLUSTER_ES_BASE_PORT=${SOCPIPE_CLUSTER_ES_BASE_PORT:-29199}
CLUSTER_ES_TRANSPORT_BASE_PORT=${SOCPIPE_CLUSTER_ES_TRANSPORT_BASE_PORT:-29299}

cluster_kafka_port() { echo $((CLUSTER_KAFKA_BASE_PORT + $1)); }
cluster_controller_port() { echo $((CLUSTER_CONTROLLER_BASE_PORT + $1)); }
cluster_es_port() { echo $((CLUSTER_ES_BASE_PORT + $1)); }
cluster_es_transport_port() { echo $((CLUSTER_ES_TRANSPORT_BASE_PORT + $1)); }

cluster_bootstrap() {
  local node servers=()
  for node in "${CLUSTER_KAFKA_NODES[@]}"; do servers+=("127.0.0.1:$(cluster_kafka_port "$node")"); done
  (IFS=,; echo "${servers[*]}")
}

cluster_voters() {
  local node voters=()
  for node in "${CLUSTER_KAFKA_NODES[@]}"; do voters+=("$node@127.0.0.1:$(cluster_controller_port "$node")"); done
  (IFS=,; echo "${voters[*]}")
}

cluster_configure_kafka() {
  local node=$1 dir=$CLUSTER_DIR/kafka-$1
  mkdir -p "$dir/data"
  write_kafka_log4j "$dir/log4j2.properties"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$(cluster_voters)
listeners=PLAINTEXT://127.0.0.1:$(cluster_kafka_port "$node"),CONTROLLER://127.0.0.1:$(cluster_controller_port "$node")
advertised.listeners=PLAINTEXT://127.0.0.1:$(cluster_kafka_port "$node")
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
}

cluster_start_kafka() {
  local node=$1 dir=$CLUSTER_DIR/kafka-$1
  if alive "$dir/kafka.pid" kafka.Kafka; then return; fi
  cluster_configure_kafka "$node"
  # The same cluster id for the three; each node's storage is formatted once.
  [ -s "$CLUSTER_DIR/cluster.id" ] || python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' > "$CLUSTER_DIR/cluster.id"
  local cmd=("$java_home_17/bin/java" -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties"
    -cp "$KAFKA_DIR/libs-$KAFKA_VERSION/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    "${cmd[@]}" kafka.tools.StorageTool format --ignore-formatted \
      -t "$(cat "$CLUSTER_DIR/cluster.id")" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "cluster Kafka node $node: storage format failed"; }
  fi
  log "starting cluster Kafka node $node on 127.0.0.1:$(cluster_kafka_port "$node")"
  nohup "${cmd[@]}" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
  echo $! > "$dir/kafka.pid"
}

cluster_configure_es() {
  local node=$1 dir=$CLUSTER_DIR/es-$1 roles
  mkdir -p "$dir/data" "$dir/logs"
  # Each node its own configuration folder (ES_PATH_CONF), from the distribution's.
  rm -rf "$dir/config"
  cp -r "$ES_HOME/config" "$dir/config"
  if [ "$node" = 1 ]; then roles="[master, data, ingest]"; else roles="[data, ingest]"; fi
  cat > "$dir/config/elasticsearch.yml" <<YML
cluster.name: socpipe-cluster
node.name: es-c$node
node.roles: $roles
path.data: $dir/data
path.logs: $dir/logs
network.host: 127.0.0.1
http.port: $(cluster_es_port "$node")
transport.port: $(cluster_es_transport_port "$node")
discovery.seed_hosts: ["127.0.0.1:$(cluster_es_transport_port 1)", "127.0.0.1:$(cluster_es_transport_port 2)"]
cluster.initial_master_nodes: ["es-c1"]
xpack.security.enabled: false
cluster.routing.allocation.disk.watermark.low: 1b
cluster.routing.allocation.disk.watermark.high: 1b
cluster.routing.allocation.disk.watermark.flood_stage: 1b
indices.merge.disk.watermark.high: 1b
action.destructive_requires_name: false
YML
  chown -R "$ES_USER:$ES_USER" "$dir"
}

cluster_start_es() {
  local node=$1 dir=$CLUSTER_DIR/es-$1
  if alive "$dir/es.pid" org.elasticsearch; then return; fi
  cluster_configure_es "$node"
  log "starting cluster Elasticsearch node es-c$node on 127.0.0.1:$(cluster_es_port "$node")"
  rm -f "$dir/es.pid"
  runuser -u "$ES_USER" -- env ES_JAVA_HOME="$java_home_21" ES_PATH_CONF="$dir/config" \
    ES_JAVA_OPTS="-Xms512m -Xmx512m" "$ES_HOME/bin/elasticsearch" -d -p "$dir/es.pid" \
    >"$dir/startup.log" 2>&1 \
    || { tail -n 40 "$dir/startup.log" >&2; die "cluster Elasticsearch node es-c$node did not start"; }
}

cluster_wait_kafka() {
  local node deadline=$((SECONDS + 180))
  for node in "${CLUSTER_KAFKA_NODES[@]}"; do
    until kafka_answers "$(cluster_kafka_port "$node")"; do
      alive "$CLUSTER_DIR/kafka-$node/kafka.pid" kafka.Kafka \
        || { tail -n 40 "$CLUSTER_DIR/kafka-$node/kafka.log" >&2; die "cluster Kafka node $node exited"; }
      [ $SECONDS -lt $deadline ] || die "cluster Kafka node $node not ready after 180 s"
      sleep 1
    done
  done
  log "cluster Kafka ready ($(cluster_bootstrap))"
}

cluster_wait_es() {
  local deadline=$((SECONDS + 300)) url
  url="http://127.0.0.1:$(cluster_es_port 1)/_cluster/health?wait_for_nodes=${#CLUSTER_ES_NODES[@]}&wait_for_status=yellow&timeout=5s"
  until curl -fsS "$url" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$CLUSTER_DIR"/es-*/logs/socpipe-cluster.log >&2 2>/dev/null; die "cluster Elasticsearch not ready after 300 s"; }
    sleep 2
  done
  log "cluster Elasticsearch ready (2 nodes)"
}

# What socpipe needs to use the cluster; the same keys point it at a production cluster.
cluster_client_config() {
  local node hosts=()
  for node in "${CLUSTER_ES_NODES[@]}"; do hosts+=("\"http://127.0.0.1:$(cluster_es_port "$node")\""); done
  cat > "$CLUSTER_DIR/socpipe-cluster.yml" <<YML
# Written by scripts/services.sh up --cluster.
kafka:
  bootstrap_servers: [$(cluster_bootstrap | sed 's/\([^,]*\)/"\1"/g; s/,/, /g')]
  partitions: 4
  replication_factor: 3
elasticsearch:
  hosts: [$(IFS=,; echo "${hosts[*]}" | sed 's/,/, /g')]
  replicas: 1
YML
}

cluster_status() {
  local code=0 node
  for node in "${CLUSTER_KAFKA_NODES[@]}"; do
    if alive "$CLUSTER_DIR/kafka-$node/kafka.pid" kafka.Kafka; then
      echo "cluster kafka $node: running (pid $(cat "$CLUSTER_DIR/kafka-$node/kafka.pid"), 127.0.0.1:$(cluster_kafka_port "$node"))"
    else echo "cluster kafka $node: stopped"; code=1; fi
  done
  for node in "${CLUSTER_ES_NODES[@]}"; do
    if alive "$CLUSTER_DIR/es-$node/es.pid" org.elasticsearch; then
      echo "cluster elasticsearch es-c$node: running (pid $(cat "$CLUSTER_DIR/es-$node/es.pid"), 127.0.0.1:$(cluster_es_port "$node"))"
    else echo "cluster elasticsearch es-c$node: stopped"; code=1; fi
  done
  echo "configuration: $CLUSTER_DIR/socpipe-cluster.yml"
  return $code
}

cluster_main() {
  local command=$1 node
  shift
  case "$command" in
    up)
      fetch_kafka
      fetch_es
      java_home_17=$(find_java 17)
      java_home_21=$(find_java 21)
      mkdir -p "$CLUSTER_DIR"
      id -u "$ES_USER" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$ES_USER"
      local dir=$CLUSTER_DIR
      while [ "$dir" != "/" ]; do dir=$(dirname "$dir"); chmod o+x "$dir" 2>/dev/null || true; done
      for node in "${CLUSTER_KAFKA_NODES[@]}"; do cluster_start_kafka "$node"; done
      for node in "${CLUSTER_ES_NODES[@]}"; do cluster_start_es "$node"; done
      cluster_wait_kafka
      cluster_wait_es
      cluster_client_config
      ;;
    down)
      for node in "${CLUSTER_KAFKA_NODES[@]}"; do
        stop_one "cluster Kafka node $node" "$CLUSTER_DIR/kafka-$node/kafka.pid" 30 kafka.Kafka
      done
      for node in "${CLUSTER_ES_NODES[@]}"; do
        stop_one "cluster Elasticsearch es-c$node" "$CLUSTER_DIR/es-$node/es.pid" 60 org.elasticsearch
      done
      ;;
    status) cluster_status ;;
    logs)
      for node in "${CLUSTER_KAFKA_NODES[@]}"; do tail -n "${1:-20}" "$CLUSTER_DIR/kafka-$node/kafka.log"; done
      for node in "${CLUSTER_ES_NODES[@]}"; do tail -n "${1:-20}" "$CLUSTER_DIR/es-$node/logs/socpipe-cluster.log"; done
      ;;
    *) die "usage: $0 up|down|status|logs --cluster" ;;
  esac
}
