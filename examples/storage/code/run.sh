#!/bin/sh
# `cps service call jobs run --app storage` writes one file per node into the
# shared volume, then lists what every node wrote (its output is in `cps service logs jobs --app storage`).
echo "${1:-hello} from $MY_NODE" > "shared/$MY_NODE.txt"
sleep 2
for f in shared/*.txt; do echo "$f: $(cat "$f")"; done
