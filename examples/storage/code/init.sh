#!/bin/sh
# Runs on each node when the code arrives. ./shared is the volume "shared" of the storage service
# "files": every node of this service sees the same files there.
echo "$MY_NODE ($MY_ROLE) joined at $(date -u +%FT%TZ)" >> shared/joined.log
