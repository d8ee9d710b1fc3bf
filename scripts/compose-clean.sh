#!/usr/bin/env bash
# Removes what the compose harness (tests/compose) left behind if it was
# interrupted before its own cleanup: containers, networks and volumes of
# compose projects whose name starts with PREFIX (default fsrepct, every
# harness project; the make targets pass fsrepct<run> so that a run cleans
# only its own projects, never another checkout's run on the same engine
# nor the developer's `make compose-up` project).
# Usage: compose-clean.sh [PREFIX]
set -uo pipefail

prefix=${1:-fsrepct}
case $prefix in
fsrepct*) ;;
*) echo "compose-clean: refusing prefix $prefix (not a harness project)" >&2; exit 2 ;;
esac

projects=$(docker ps -a --format '{{.Label "com.docker.compose.project"}}' | grep "^$prefix" | sort -u)
for p in $projects; do
	echo "compose-clean: removing project $p" >&2
	ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p")
	[ -n "$ids" ] && docker rm -f $ids >/dev/null
done
for n in $(docker network ls --format "{{.Name}}" | grep "^$prefix"); do
	docker network rm "$n" >/dev/null || echo "compose-clean: warning: network $n not removed (an engine endpoint leak; it is empty)" >&2
done
for v in $(docker volume ls --format '{{.Name}}' | grep "^$prefix"); do docker volume rm "$v" >/dev/null; done
exit 0
