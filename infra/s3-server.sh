#!/usr/bin/env bash
# Start a local S3 server (versitygw, Apache-2.0, POSIX backend) for EvoMerge's
# store: ./infra/s3-server.sh [DATA_DIR] [ADDR]
# Builds versitygw once from the Go module proxy into ~/.cache/evomerge/bin.
# Then point workers at it:
#   export AWS_ACCESS_KEY_ID=evomerge AWS_SECRET_ACCESS_KEY=evomerge-secret AWS_REGION=us-east-1
#   go run ./workers --store 's3://evomerge/runs?endpoint=http://127.0.0.1:7070'
set -euo pipefail
VERSION=v1.8.0
DATA=${1:-./.evomerge/s3}
ADDR=${2:-127.0.0.1:7070}
ACCESS=${AWS_ACCESS_KEY_ID:-evomerge}
SECRET=${AWS_SECRET_ACCESS_KEY:-evomerge-secret}
BIN=${EVOMERGE_VERSITYGW:-$HOME/.cache/evomerge/bin/versitygw}

if [[ ! -x "$BIN" ]]; then
  echo "building versitygw $VERSION (once) into $(dirname "$BIN")" >&2
  mkdir -p "$(dirname "$BIN")"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "github.com/versity/versitygw/cmd/versitygw@$VERSION")
  mv "$tmp/versitygw" "$BIN"
fi

# versitygw's POSIX backend serves each top-level directory as a bucket.
mkdir -p "$DATA/evomerge"
echo "S3 on http://$ADDR (bucket 'evomerge', data in $DATA); access key $ACCESS" >&2
exec "$BIN" --access "$ACCESS" --secret "$SECRET" --port "$ADDR" --quiet posix "$DATA"
