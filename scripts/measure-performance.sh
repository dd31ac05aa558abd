#!/usr/bin/env bash
# The measurements quoted in README.md and docs/performance.md, in one go,
# into the folder given (default: ./measurements). Needs PostgreSQL and about
# 12 minutes; run it on an otherwise idle machine. OLD=path/to/classbot adds
# the closed-loop run of an older build (the "before" row).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
out=${1:-measurements}
mkdir -p "$out"
go build -o "$out/classbot-loadtest" ./cmd/classbot-loadtest
go build -o "$out/classbot" ./cmd/classbot
createdb -h 127.0.0.1 -U postgres classbot_load 2>/dev/null || true
export DATABASE_URL=${DATABASE_URL:-'postgres://postgres@127.0.0.1:5432/classbot_load?sslmode=disable'}
L="taskset -c 1 $out/classbot-loadtest --bot-binary $out/classbot --bot-cpus 0"
{ date; grep -m1 'model name' /proc/cpuinfo; nproc --all; git log --oneline -1; } > "$out/00-machine.txt"
go test -run '^$' -bench 'Postgres' -benchtime 2s ./store > "$out/01-storebench.txt" 2>&1
$L --store postgres --references --rate 1000 --duration 30s > "$out/02-slack-1000.txt" 2>&1
$L --store postgres --references --rate 1000 --duration 30s --db-latency 5ms > "$out/03-slack-1000-5ms.txt" 2>&1
$L --platform discord --store memory --rate 1000 --duration 30s > "$out/04-discord-mem.txt" 2>&1
$L --platform discord --store postgres --rate 1000 --duration 30s > "$out/05-discord-pg.txt" 2>&1
$L --store postgres --concurrency 200 --duration 20s > "$out/06-closed-new.txt" 2>&1
if [ -n "${OLD:-}" ]; then
  taskset -c 1 "$out/classbot-loadtest" --bot-binary "$OLD" --bot-cpus 0 --store postgres --concurrency 200 --duration 20s > "$out/07-closed-old.txt" 2>&1
fi
$L --store postgres --rate 3000 --duration 10s --max-in-flight 1000 --llm-concurrency 16 > "$out/08-overload.txt" 2>&1
$L --store postgres --rate 1000 --duration 5s > "$out/09-after-overload.txt" 2>&1
$L --store postgres --mode sync,async,bare --rate 1000 --duration 30s \
  --model-latency lognormal:median=2s,p99=6s --plot "$out/latency.png" > "$out/10-chart.txt" 2>&1
echo "done: $out"
