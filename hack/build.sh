#!/usr/bin/env bash
# `make build`: bin/moss, one binary. The full binary (main.go: agent,
# storage, holder and every other role) is built first, compressed, and
# embedded into the light front binary (main_front.go: CLI, shim,
# libcontainer's init), which is what bin/moss is (README, Design).
# Both link statically when the toolchain can (glibc's static libc,
# libseccomp.a); otherwise dynamically, with the reason shown.
#   build.sh LDFLAGS TAGS(comma-separated)
set -euo pipefail
cd "$(dirname "$0")/.."
ldflags=$1
tags=$2
go=${GO:-go}
static="-linkmode external -extldflags -static"
mkdir -p bin

link() { # out, tags, package
	if $go build -tags "$2" -ldflags "$ldflags $static" -o "$1" "$3" 2>bin/static-link.log; then
		rm -f bin/static-link.log
	else
		echo "static link of $1 failed (bin/static-link.log: $(grep -m1 -E 'ld: |cannot find|error' bin/static-link.log || tail -1 bin/static-link.log)); building it dynamically"
		$go build -tags "$2" -ldflags "$ldflags" -o "$1" "$3"
	fi
}

link bin/moss-full "$tags" .
gzip -9 -n -c bin/moss-full >bin/moss-full.gz
link bin/moss "$tags,moss_front" .
for b in bin/moss bin/moss-full; do
	if ldd "$b" >/dev/null 2>&1; then
		echo "$b: dynamic, needs:"
		ldd "$b" | awk '{print "  " $1}'
	fi
done
printf 'bin/moss: %s MiB (carries bin/moss-full, %s MiB, as %s MiB)\n' \
	"$(($(stat -c %s bin/moss) / 1048576))" "$(($(stat -c %s bin/moss-full) / 1048576))" \
	"$(($(stat -c %s bin/moss-full.gz) / 1048576))"
