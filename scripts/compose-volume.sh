#!/usr/bin/env bash
# Creates a volume in a compose cluster unless it exists, through n1a's
# fsrepctl (the admin token is in the node's data directory), exported with
# no_root_squash: the workload client writes as root (uid 0) into the volume's
# root directory, which root_squash would refuse (NFS3ERR_ACCES). This is a
# test cluster on private networks; do not copy that to production.
# Usage: compose-volume.sh PROJECT VOLUME
set -euo pipefail

project=$1
vol=$2
id=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=n1a")
if [ -z "$id" ]; then
	echo "compose-volume: n1a of project $project is not running" >&2
	exit 1
fi
ctl() { docker exec "$id" /fsrepctl --admin https://127.0.0.1:9090 --ca-file /run/fsrep/tls/ca.crt --token-file /data/admin.token "$@"; }
rc=0
ctl volume info "$vol" >/dev/null 2>&1 || rc=$?
case $rc in
0) echo "compose-volume: $vol exists" ;;
3) ctl volume create "$vol" && ctl export set "$vol" --squash no_root_squash >/dev/null ;;
*) echo "compose-volume: volume info $vol failed (exit $rc)" >&2; exit 1 ;;
esac
