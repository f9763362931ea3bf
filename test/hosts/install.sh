#!/bin/sh
# Install the pinned chat-host CLIs (Claude Code, Codex, OpenCode) for the
# host-onramp tests into .cache/host-clis (gitignored) and print its bin
# directory. npm's cache makes a re-install quick. Install scripts must run:
# Claude Code and OpenCode put their native binaries in place there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
key=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-12)
dir="$root/.cache/host-clis-$key"
if [ ! -x "$dir/node_modules/.bin/codex" ]; then
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  cp "$here/package.json" "$here/package-lock.json" "$dir.tmp/"
  (cd "$dir.tmp" && npm install --no-audit --no-fund --loglevel=error >/dev/null 2>&1)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
echo "$dir/node_modules/.bin"
