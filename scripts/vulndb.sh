#!/usr/bin/env bash
# Builds govulncheck's vulnerability database offline, from a pinned snapshot
# of the golang.org/x/vulndb module (the public database host is not
# reachable; the module proxy is). The module's data/osv/*.json are the OSV
# reports; vulndb's own cmd/indexdb, at the same version, writes them in the
# layout govulncheck reads with -db file:///abs/dir:
#   index/db.json  index/modules.json  index/vulns.json  ID/GO-YYYY-NNNN.json
# (plus .gz copies). Does nothing if dest already holds this version.
#
# usage: scripts/vulndb.sh VULNDB_VERSION DEST
set -euo pipefail
version=$1
dest=$2
case $dest in /*) ;; *) dest=$PWD/$dest ;; esac
mod=golang.org/x/vulndb

if [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ] && [ -f "$dest/index/db.json" ]; then
  echo "vulnerability database $mod@$version already in $dest"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$dest.tmp"' EXIT
cd "$tmp" # outside any module or workspace

# The module zip from the proxy (verified against the checksum database).
go mod download "$mod@$version"
dir=$(go list -m -f '{{.Dir}}' "$mod@$version")
modified=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$mod@$version") # the snapshot's commit time
if [ ! -d "$dir/data/osv" ]; then
  echo "vulndb.sh: $dir/data/osv not found in $mod@$version" >&2
  exit 1
fi

rm -rf "$dest.tmp"
go run "$mod/cmd/indexdb@$version" -vulns "$dir/data/osv" -out "$dest.tmp"

# The OSV files in the repository carry no modified time (the hosted database
# takes it from git history), so db.json says 0001-01-01; record the
# snapshot's time instead, which govulncheck shows as the database's date
# (vulndb's cmd/checkdb, stricter than govulncheck, would object to that).
printf '{"modified":"%s"}' "$modified" >"$dest.tmp/index/db.json"
gzip -n -c "$dest.tmp/index/db.json" >"$dest.tmp/index/db.json.gz"

n=$(find "$dest.tmp/ID" -name '*.json' | wc -l)
if [ "$n" -lt 1000 ] || ! grep -q '"path":"stdlib"' "$dest.tmp/index/modules.json"; then
  echo "vulndb.sh: the database built from $mod@$version looks incomplete ($n reports)" >&2
  exit 1
fi
echo "$version" >"$dest.tmp/VERSION"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "vulnerability database from $mod@$version ($n reports, modified $modified) in $dest"
