#!/usr/bin/env bash
# Copies the googleapis protos certflow imports out of the npm package
# google-proto-files into a git-ignored folder. Only the files we import are
# copied: others in google/api import protos that are not in the package.
set -euo pipefail
version=$1
dest=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "google-proto-files@${version}" >/dev/null && tar xzf google-proto-files-*.tgz)
mkdir -p "$dest/google/api"
for f in google/api/annotations.proto google/api/http.proto google/api/field_behavior.proto; do
  cp "$tmp/package/$f" "$dest/$f"
done
echo "googleapis protos from google-proto-files@${version} in $dest"
