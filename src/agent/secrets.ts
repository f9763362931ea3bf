/**
 * The workspace's secrets in the guest: files under /run/pyro-secrets
 * (tmpfs, root-only), written by the host after every boot, restore or
 * reset (`secrets_set`), and the agent's own copy of their values, which
 * it uses to set per-call environment variables and to redact shell and
 * service output as it is produced.
 */
import fs from "node:fs";
import path from "node:path";
import { OpError, WireCodes } from "../protocol/errors.js";
import type { SecretEnv, SecretsSetArgs } from "../protocol/messages.js";
import { Redactor } from "../secrets/redaction.js";
import { GUEST_SECRETS_DIR, secretNameProblem, secretValueProblem } from "../secrets/spec.js";

/** Tests running the agent on a host point it elsewhere. */
function secretsDir(): string {
  return process.env.PYRO_AGENT_SECRETS_DIR ?? GUEST_SECRETS_DIR;
}

let values = new Map<string, string>();
let redactor = new Redactor();
/** Bumped by every secrets_set: streams started before it switch to the new secrets. */
let generation = 0;

/** An agent restarted by init finds the secrets its predecessor was given. */
function loadFromDisk(): void {
  const dir = secretsDir();
  if (!fs.existsSync(dir)) return;
  const found = new Map<string, string>();
  for (const name of fs.readdirSync(dir)) {
    if (secretNameProblem(name) === undefined)
      found.set(name, fs.readFileSync(path.join(dir, name), "utf8"));
  }
  values = found;
  redactor = new Redactor(found.values());
  generation += 1;
}

try {
  loadFromDisk();
} catch {
  // Unreadable: the host writes them again at its next secrets_set.
}

/** Redacts the current secrets (a new one after each secrets_set). */
export function secretsRedactor(): Redactor {
  return redactor;
}

/**
 * A stream redactor for output that lives long (a shell, a service) and
 * always redacts the current secrets: one started before the host wrote
 * them (or before they changed) picks them up at its next chunk.
 */
export function secretsStream(): { push(chunk: Buffer): Buffer; end(): Buffer } {
  let seen = generation;
  let stream = redactor.stream();
  return {
    push(chunk) {
      if (seen !== generation) {
        const held = stream.takeHeld();
        seen = generation;
        stream = redactor.stream();
        return stream.push(held.length > 0 ? Buffer.concat([held, chunk]) : chunk);
      }
      return stream.push(chunk);
    },
    end() {
      if (seen !== generation) {
        const held = stream.takeHeld();
        stream = redactor.stream();
        return Buffer.concat([stream.push(held), stream.end()]);
      }
      return stream.end();
    },
  };
}

/** Environment variables for one call: each names a secret whose value it gets. */
export function secretEnvironment(spec: SecretEnv | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  if (spec === undefined || spec === null) return env;
  if (typeof spec !== "object" || Array.isArray(spec))
    throw new OpError(WireCodes.BadArgs, "secret_env must map variable names to secret names");
  for (const [variable, name] of Object.entries(spec)) {
    if (secretNameProblem(variable) !== undefined || typeof name !== "string")
      throw new OpError(WireCodes.BadArgs, `secret_env: bad entry for ${variable}`);
    const value = values.get(name);
    if (value === undefined)
      throw new OpError(WireCodes.SecretNotFound, `the guest has no secret named ${name}`);
    env[variable] = value.replace(/[\r\n]+$/, "");
  }
  return env;
}

async function secretsSet(rawArgs: Record<string, unknown>): Promise<{ count: number }> {
  const secrets = (rawArgs as unknown as SecretsSetArgs).secrets;
  if (secrets === null || typeof secrets !== "object" || Array.isArray(secrets))
    throw new OpError(WireCodes.BadArgs, "secrets must map names to values");
  const next = new Map<string, string>();
  for (const [name, encoded] of Object.entries(secrets)) {
    // Base64 on the wire: a value full of control characters would grow 6× as JSON.
    const value =
      typeof encoded === "string" ? Buffer.from(encoded, "base64").toString("utf8") : "";
    const problem = secretNameProblem(name) ?? secretValueProblem(`secret ${name}`, value);
    if (problem !== undefined) throw new OpError(WireCodes.BadArgs, problem);
    next.set(name, value);
  }
  const dir = secretsDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  for (const [name, value] of next) {
    // Written beside and renamed: a reader never sees half a secret.
    const tmp = path.join(dir, `.${name}.tmp`);
    fs.writeFileSync(tmp, value, { mode: 0o400 });
    fs.renameSync(tmp, path.join(dir, name));
  }
  for (const name of fs.readdirSync(dir)) {
    if (!next.has(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
  values = next;
  redactor = new Redactor(next.values());
  generation += 1;
  return { count: next.size };
}

export const secretHandlers = { secrets_set: secretsSet };
