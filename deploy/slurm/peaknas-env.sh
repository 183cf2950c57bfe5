# shellcheck shell=bash
# Settings shared by the peaknas Slurm scripts; sourced, not run. Override any of them in the
# environment of `sbatch` (it passes the submitting shell's environment on), e.g.
#   PEAKNAS_STATE=/shared/peaknas PEAKNAS_DATA=sidd=/shared/sidd sbatch workers.sbatch

# A directory every node sees (a shared filesystem): the coordinator's database, models and
# log, the file with its address, and the TLS material and tokens.
: "${PEAKNAS_STATE:=$HOME/peaknas}"
# The gRPC port the coordinator listens on, and its HTTP port (JSON API, dashboard, probes).
: "${PEAKNAS_PORT:=50051}"
: "${PEAKNAS_HTTP_PORT:=8443}"
# The datasets workers train on: NAME=PATH, several separated by spaces.
: "${PEAKNAS_DATA:=sidd=$PEAKNAS_STATE/data/sidd}"
# The coordinator node's name as workers reach it (empty: its `hostname -f`).
: "${PEAKNAS_HOST:=}"
# Where the programs are (empty: on PATH).
: "${PEAKNAS_BIN:=}"

# The file the coordinator writes its address (HOST:PORT) to once it serves.
PEAKNAS_ADDRESS_FILE=$PEAKNAS_STATE/coordinator.address
# TLS: with $PEAKNAS_STATE/tls/server.pem and server.key (scripts/make-test-ca, for the
# coordinator node's name) the coordinator serves TLS and workers check it against ca.pem;
# without them it serves plaintext (--insecure): only on a network you trust.
PEAKNAS_TLS_DIR=$PEAKNAS_STATE/tls
# A worker token (peaknas-server token create --role worker), when the coordinator has tokens.
PEAKNAS_WORKER_TOKEN=$PEAKNAS_STATE/tokens/worker.token

peaknas_program() { printf '%s\n' "${PEAKNAS_BIN:+$PEAKNAS_BIN/}$1"; }

# Waits up to $1 seconds for the coordinator's address file; prints the address.
peaknas_wait_for_coordinator() {
  local deadline=$((SECONDS + $1))
  until [[ -s $PEAKNAS_ADDRESS_FILE ]]; do
    if ((SECONDS >= deadline)); then
      echo "peaknas: no coordinator address in $PEAKNAS_ADDRESS_FILE after $1 s" >&2
      return 1
    fi
    sleep 5
  done
  cat "$PEAKNAS_ADDRESS_FILE"
}

# The worker's flags for reaching the coordinator (TLS and token when present).
peaknas_client_flags() {
  if [[ -f $PEAKNAS_TLS_DIR/ca.pem ]]; then
    printf '%s\n' --tls-ca "$PEAKNAS_TLS_DIR/ca.pem"
  fi
  if [[ -f $PEAKNAS_WORKER_TOKEN ]]; then
    printf '%s\n' --token-file "$PEAKNAS_WORKER_TOKEN"
  fi
}

# The worker's --data flags, one per NAME=PATH of $PEAKNAS_DATA.
peaknas_data_flags() {
  local d
  for d in $PEAKNAS_DATA; do
    printf '%s\n' --data "$d"
  done
}
