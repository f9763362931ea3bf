#!/usr/bin/env bash
# Pack pyro-mcp, install the tarball into an empty directory, and run the
# installed `pyro` from there: what a user gets from `npm install pyro-mcp`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "./$tarball" >/dev/null
pyro="$work/node_modules/.bin/pyro"
echo "+ pyro --version"; "$pyro" --version
echo "+ pyro --help"; "$pyro" --help
echo "+ pyro env list"; PYRO_HOME="$work/home" "$pyro" env list
node --input-type=module -e "import { Pyro, VERSION } from 'pyro-mcp'; const p = new Pyro({ home: '$work/home' }); const l = await p.environments.list(); if (!l.length) process.exit(1); console.log('sdk ok', VERSION, l.length, 'environments');"
echo "dist-check: ok"
