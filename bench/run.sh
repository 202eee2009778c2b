#!/bin/sh
# Full benchmark run (about 13 minutes on 2 cores): the micro-benchmarks,
# then the program, which writes bench/RESULTS.md and bench/results.json.
# Extra arguments go to the program (e.g. -rot-dur 30s).
set -e
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchmem -benchtime 2s . | tee bench/micro.txt
go run ./bench -micro bench/micro.txt -notes bench/NOTES.md -out bench/RESULTS.md "$@"
