#!/bin/sh
# Full benchmark run (about 45 minutes on 2 cores): the micro-benchmarks of
# the root package and of the framer (internal/reauth, internal/resp), then
# the program, which writes bench/RESULTS.md and bench/results.json.
# Extra arguments go to the program (e.g. -rot-rounds 12).
set -e
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchmem -benchtime 2s . ./internal/reauth ./internal/resp | tee bench/micro.txt
go run ./bench -micro bench/micro.txt -notes bench/NOTES.md -out bench/RESULTS.md "$@"
