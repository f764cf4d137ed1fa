#!/bin/sh
# Runs on each node when the code arrives: prepare what run.sh needs.
echo "init on $(hostname) at $(date -u +%FT%TZ)" > init.log
