#!/usr/bin/env bash
# Every benchmark behind BENCHMARKS.md, in one command:
#   bench/run-all.sh [output-dir]
# Builds release binaries, then runs each workload three times against a
# freshly spawned chats3 (temporary data dir, rate limits off, default
# flush settings) and a fan-out sweep that draws the latency chart.
# With S3_ENDPOINT=http://127.0.0.1:PORT (bucket S3_BUCKET, default
# chats3-bench, already created; keys in AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY) the storage workload also runs against that
# S3-compatible server. With redis-server installed, the cluster runs too:
# fan-out across 3 instances against 1 on the same Redis, and send in
# redis mode against local. Loopback only. Takes about 28 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/benchmarks}"
mkdir -p "$out"
cargo build --release -p chats3 -p chats3-bench --bins
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bench="$target/release/chats3-bench"
log="$out/results.txt"
: > "$log"
run() {
  echo "## chats3-bench $*" | tee -a "$log"
  "$bench" "$@" --spawn --runs 3 2>&1 | tee -a "$log"
}
run send --rooms 10 --users 5 --concurrency 64 --duration 10s
# The depth issue 13's message-to-/health CPU ratio is measured at.
run send --rooms 10 --users 5 --concurrency 32 --duration 10s
run fanout --rooms 20 --users 50 --rate 2000 --duration 10s
run fanout --rooms 20 --users 50 --rates 500,1000,2000,3000,4000,5000,6000,7000,8000 --duration 6s \
  --chart "$out/fanout-latency.svg"
run idle --streams 10000
run idle --streams 10000 --transport ws
run fanout --rooms 20 --users 50 --rate 2000 --duration 10s --compare-transport ws
# Density: as many streams as the 20,000 descriptors allow, half SSE, half WebSocket.
run idle --streams 19800 --mixed --sources 4 --hold 20s --server-env CHATS3_SERVER__HEARTBEAT_INTERVAL=5s
run rooms --rooms 20000
run history --messages 100000 --duration 5s
run search --messages 100000 --duration 9s
run storage --rooms 5 --rate 1000 --duration 20s
run thumbnail
if command -v redis-server > /dev/null; then
  # About 20,000 deliveries/s (410 msgs/s x 49 participants), 3 instances
  # as A and 1 as B, both on a Redis the tool starts.
  run fanout --rooms 20 --users 50 --rate 410 --duration 10s \
    --server-env CHATS3_CLUSTER__BACKEND=redis --instances 3 --compare-instances 1
  run send --rooms 10 --users 5 --concurrency 64 --duration 10s \
    --compare-server-env CHATS3_CLUSTER__BACKEND=redis
else
  echo "redis-server is not installed: the cluster runs are skipped" | tee -a "$log"
fi
if [ -n "${S3_ENDPOINT:-}" ]; then
  s3=(
    --server-env CHATS3_STORAGE__BACKEND=s3
    --server-env "CHATS3_STORAGE__S3__ENDPOINT=$S3_ENDPOINT"
    --server-env "CHATS3_STORAGE__S3__BUCKET=${S3_BUCKET:-chats3-bench}"
    --server-env CHATS3_STORAGE__S3__FORCE_PATH_STYLE=true
    --server-env "CHATS3_STORAGE__S3__ACCESS_KEY=${AWS_ACCESS_KEY_ID:-test}"
    --server-env "CHATS3_STORAGE__S3__SECRET_KEY=${AWS_SECRET_ACCESS_KEY:-test}"
  )
  run storage --rooms 5 --rate 1000 --duration 20s "${s3[@]}"
  run history --messages 100000 --duration 5s "${s3[@]}"
fi
echo "results in $log"
