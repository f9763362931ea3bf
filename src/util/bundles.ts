/**
 * Finding pyro's own bundled entry points (the guest agent, the workspace
 * supervisor): beside the built code in dist/ (or one or two folders below it:
 * dist/chunks/, dist/bin/chunks/), or in the
 * repository's dist/ when running from source.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCodes, PyroError } from "../errors.js";

export function locateBundle(file: string, envOverride: string | undefined, what: string): string {
  if (envOverride) return envOverride;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, file),
    path.join(here, "..", file),
    path.join(here, "..", "..", file),
    path.resolve(here, "..", "..", "dist", file),
  ];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, `${what} (dist/${file}) is missing`, {
      hint: "run `npm run build` in the pyro checkout",
    });
  }
  return found;
}
