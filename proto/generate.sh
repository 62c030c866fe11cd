#!/bin/sh
# Regenerates the Go code of proto/ (make proto). Needs protoc (Debian's
# protobuf-compiler) and the plugins at the versions below.
set -eu
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH"
for f in base/v1/base.proto network/v1/network.proto volume/v1/volume.proto; do
	protoc -I . --go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. "$f"
done
