/**
 * The layers of src/, top to bottom, and an ESLint rule that refuses an
 * import that goes up (a lower layer reaching a higher one). One direction
 * of dependency: cli → mcp → sdk → daily-loop/run → workspaces → supervisor
 * → boot → records → environments → vm/host/agent → protocol/network/secrets → base.
 * Tests may reach anywhere; the guest agent is reached by nothing.
 */
import path from "node:path";

/** Each folder (or root file) of src/ and its layer; 0 is the top. */
export const LAYERS = {
  cli: 0,
  mcp: 1,
  sdk: 2,
  "index.ts": 2,
  "daily-loop": 3,
  run: 3,
  workspaces: 4,
  supervisor: 5,
  boot: 6,
  records: 7,
  environments: 8,
  vm: 9,
  host: 9,
  agent: 9,
  protocol: 10,
  network: 10,
  secrets: 10,
  util: 11,
  config: 11,
  "errors.ts": 11,
  "limits.ts": 11,
  "surfaces.ts": 11,
  "chat-hosts": 3,
  "version.ts": 11,
};

/** The folder (or root file) of src/ a path is in, or undefined outside src/. */
function roomOf(file, srcDir) {
  const relative = path.relative(srcDir, file);
  if (relative.startsWith("..") || path.isAbsolute(relative)) return undefined;
  return relative.split(path.sep)[0];
}

export const layersRule = {
  meta: {
    type: "problem",
    docs: { description: "imports only go down the layers of src/" },
    schema: [{ type: "object", properties: { srcDir: { type: "string" } } }],
    messages: {
      upward:
        "{{from}} (layer {{fromLayer}}) must not import {{to}} (layer {{toLayer}}): imports only go down (see eslint.layers.js)",
      agent:
        "only the guest agent's own files import src/agent (it runs in the VM, not on the host)",
      unknown: "{{room}} is not a layer of src/: add it to LAYERS in eslint.layers.js",
    },
  },
  create(context) {
    const srcDir = context.options[0]?.srcDir ?? path.join(context.cwd, "src");
    const file = context.filename;
    const from = roomOf(file, srcDir);
    if (from === undefined || /\.test\.ts$/.test(file)) return {};
    const check = (node, specifier) => {
      if (typeof specifier !== "string" || !specifier.startsWith(".")) return;
      const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, ".ts");
      const to = roomOf(target, srcDir);
      if (to === undefined || to === from) return;
      if (LAYERS[from] === undefined) {
        context.report({ node, messageId: "unknown", data: { room: from } });
        return;
      }
      if (LAYERS[to] === undefined) {
        context.report({ node, messageId: "unknown", data: { room: to } });
        return;
      }
      if (to === "agent") {
        context.report({ node, messageId: "agent" });
        return;
      }
      if (LAYERS[to] < LAYERS[from]) {
        context.report({
          node,
          messageId: "upward",
          data: { from, to, fromLayer: LAYERS[from], toLayer: LAYERS[to] },
        });
      }
    };
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) => check(node.source, node.source.value),
    };
  },
};

export default { rules: { layers: layersRule } };
