#!/usr/bin/env bash
# Removes what the compose harness (tests/compose) left behind if it was
# interrupted before its own cleanup: containers, networks and volumes of
# compose projects named fsrepct* (the harness's prefix; never the
# developer's `make compose-up` project).
set -uo pipefail

projects=$(docker ps -a --format '{{.Label "com.docker.compose.project"}}' | grep '^fsrepct' | sort -u)
for p in $projects; do
	echo "compose-clean: removing project $p" >&2
	ids=$(docker ps -aq --filter "label=com.docker.compose.project=$p")
	[ -n "$ids" ] && docker rm -f $ids >/dev/null
done
for n in $(docker network ls --format '{{.Name}}' | grep '^fsrepct'); do docker network rm "$n" >/dev/null; done
for v in $(docker volume ls --format '{{.Name}}' | grep '^fsrepct'); do docker volume rm "$v" >/dev/null; done
exit 0
