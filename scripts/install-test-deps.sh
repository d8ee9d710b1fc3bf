#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian 12 machine, and nothing that
# is already there. Safe to run again; prints what it did.
#   - libnfs-utils: nfs-ls, nfs-cp, nfs-cat, the real-client tests' NFS clients.
#   - gcc, libc6-dev: `go test -race` needs cgo, hence a C compiler.
set -euo pipefail

log() { echo "install-test-deps: $*"; }

# Each entry: "command-that-must-exist package [package...]".
wants=(
	"nfs-ls libnfs-utils"
	"nfs-cp libnfs-utils"
	"nfs-cat libnfs-utils"
	"${CC:-gcc} gcc libc6-dev"
)

pkgs=()
for w in "${wants[@]}"; do
	read -r cmd deps <<<"$w"
	if command -v "$cmd" >/dev/null 2>&1; then
		log "$cmd: present"
		continue
	fi
	log "$cmd: missing (needs $deps)"
	for p in $deps; do
		[[ " ${pkgs[*]-} " == *" $p "* ]] || pkgs+=("$p")
	done
done

if [ ${#pkgs[@]} -eq 0 ]; then
	log "nothing to install"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	log "apt-get not found; install ${pkgs[*]} (or your system's equivalent) by hand" >&2
	exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		log "not root and no sudo; install ${pkgs[*]} by hand" >&2
		exit 1
	fi
	sudo=(sudo)
fi

log "apt-get update"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
log "apt-get install -y --no-install-recommends ${pkgs[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"

for w in "${wants[@]}"; do
	read -r cmd _ <<<"$w"
	if ! command -v "$cmd" >/dev/null 2>&1; then
		log "$cmd still missing after installing ${pkgs[*]}" >&2
		exit 1
	fi
done
log "installed ${pkgs[*]}"
