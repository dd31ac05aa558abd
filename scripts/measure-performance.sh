#!/usr/bin/env bash
# The measurements quoted in README.md and docs/performance.md, in one go,
# into the folder given (default: ./measurements). Needs PostgreSQL and about
# 20 minutes; run it on an otherwise idle machine (each report's "other
# programs" CPU says whether it was). OLD=path/to/classbot adds
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
# Queue mode (issue 11) with async as its reference in the same invocation,
# then at 300/s, then with fewer workers; and the tables' row sizes
# (docs/scaling.md).
$L --store postgres --mode async,queue --rate 1000 --duration 30s --queue-workers 2500 > "$out/11-queue-1000.txt" 2>&1
$L --store postgres --mode async,queue --rate 300 --duration 30s --queue-workers 1000 > "$out/12-queue-300.txt" 2>&1
$L --store postgres --mode queue --rate 1000 --duration 30s --queue-workers 2500 > "$out/13-queue-2500-workers.txt" 2>&1
psql "$DATABASE_URL" -c 'VACUUM ANALYZE interactions, registrations, ask_memory, river_job' \
  -c "SELECT t, rows, row_bytes, total_bytes / greatest(rows, 1) AS bytes_per_row_with_indexes FROM (
      SELECT 'interactions' t, count(*) rows, avg(pg_column_size(x.*))::int row_bytes, pg_total_relation_size('interactions') total_bytes FROM interactions x
      UNION ALL SELECT 'registrations', count(*), avg(pg_column_size(x.*))::int, pg_total_relation_size('registrations') FROM registrations x
      UNION ALL SELECT 'ask_memory', count(*), avg(pg_column_size(x.*))::int, pg_total_relation_size('ask_memory') FROM ask_memory x
      UNION ALL SELECT 'river_job', count(*), avg(pg_column_size(x.*))::int, pg_total_relation_size('river_job') FROM river_job x) s" \
  > "$out/14-row-sizes.txt" 2>&1
echo "done: $out"
