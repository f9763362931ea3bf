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
# The front door hides its internals; the MCP server is its own entry point.
node --input-type=module -e "import { Pyro } from 'pyro-mcp'; const p = new Pyro({ home: '$work/home' }); for (const k of ['store', 'paths', 'cache']) { if (k in p || k in p.workspaces) { console.error('internal exposed: ' + k); process.exit(1); } } console.log('front door ok:', Object.keys(p).join(', '));"
node --input-type=module -e "import { Pyro } from 'pyro-mcp'; import { createMcpServer, TOOL_NAMES } from 'pyro-mcp/mcp'; const s = createMcpServer(new Pyro({ home: '$work/home' }), { mode: 'repro-fix' }); if (!s || TOOL_NAMES.length !== 45) process.exit(1); console.log('pyro-mcp/mcp ok');"
echo "dist-check: ok"
