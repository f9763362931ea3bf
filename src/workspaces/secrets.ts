/**
 * A workspace's secrets (contract §4 "Secrets") on the host: checked and
 * read at create (literals, files, or pyro's own environment), kept in one
 * owner-only store in the workspace's directory (the record holds only
 * their names), written into the guest after every boot, restore or reset,
 * and redacted from everything a workspace operation returns or records.
 */
import fs from "node:fs";
import { readJsonFile, writeFileAtomic } from "../config/paths.js";
import { ErrorCodes, PyroError, isPyroError } from "../errors.js";
import type { SecretEnv } from "../protocol/messages.js";
import type { WorkspaceRecord } from "../records/store.js";
import { Redactor } from "../secrets/redaction.js";
import { SECRET_LIMITS, secretNameProblem, secretValueProblem } from "../secrets/spec.js";
import type { WorkspaceContext } from "./context.js";

export const SECRETS_FILE = "secrets.json";

export interface SecretOptions {
  /** NAME → value, or a list of "NAME=VALUE" (a bare "NAME" takes pyro's environment variable NAME). */
  secrets?: Record<string, string> | string[];
  /** NAME → path of a host file holding the value (at most 64 KiB of text), or a list of "NAME=PATH". */
  secretFiles?: Record<string, string> | string[];
}

/**
 * Which secrets an exec, shell or service gets as environment variables:
 * "NAME" (variable NAME) or "NAME=VAR" (secret NAME as variable VAR), or a
 * map of variable → secret name.
 */
export type SecretEnvSpec = string[] | Record<string, string>;

function usage(message: string, hint?: string): PyroError {
  return new PyroError(ErrorCodes.UsageError, message, hint ? { hint } : {});
}

/** One secret as given: its name, its value or file, and how errors name it. */
interface GivenSecret {
  name: string;
  /** "secret NAME", or for a "NAME=VALUE" item "the 2nd --secret" (the item may be a value by mistake). */
  label: string;
  value?: string;
  file?: string;
}

const ordinal = (n: number) => `${n}${n === 1 ? "st" : n === 2 ? "nd" : n === 3 ? "rd" : "th"}`;

/** The values of `options`, checked; nothing is created when one is bad. */
export function readSecretOptions(options: SecretOptions): Record<string, string> {
  const given: GivenSecret[] = [
    ...(Array.isArray(options.secrets)
      ? parseSecretArgs(options.secrets)
      : Object.entries(options.secrets ?? {}).map(([name, value]) => ({
          name,
          label: `secret ${name}`,
          value,
        }))),
    ...(Array.isArray(options.secretFiles)
      ? parseSecretFileArgs(options.secretFiles)
      : Object.entries(options.secretFiles ?? {}).map(([name, file]) => ({
          name,
          label: `secret ${name}`,
          file,
        }))),
  ];
  const values: Record<string, string> = {};
  for (const secret of given) {
    const problem = secretNameProblem(secret.name);
    if (problem) {
      throw secret.label.startsWith("secret ")
        ? usage(`secret ${problem}`)
        : usage(
            `${secret.label}: the part before '=' is not a valid name (letters, digits and _, not starting with a digit; not shown, in case it is a value)`,
          );
    }
    if (Object.hasOwn(values, secret.name)) throw usage(`${secret.label} is given twice`);
    const value =
      secret.file === undefined ? secret.value : readSecretFile(secret.label, secret.file);
    if (typeof value !== "string") throw usage(`${secret.label} must be a string`);
    const valueProblem = secretValueProblem(secret.label, value);
    if (valueProblem) throw usage(valueProblem);
    values[secret.name] = value;
  }
  if (Object.keys(values).length > SECRET_LIMITS.count)
    throw usage(`at most ${SECRET_LIMITS.count} secrets per workspace`);
  const total = Object.values(values).reduce((sum, v) => sum + Buffer.byteLength(v), 0);
  if (total > SECRET_LIMITS.totalBytes)
    throw usage(
      `the secrets are ${total} bytes together, more than the ${SECRET_LIMITS.totalBytes / 1024} KiB a workspace may have`,
    );
  return values;
}

function readSecretFile(label: string, file: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw usage(`the file of ${label} (${file}) does not exist`, "give a readable file");
  }
  if (!stat.isFile()) throw usage(`the file of ${label} (${file}) is not a regular file`);
  if (stat.size > SECRET_LIMITS.valueBytes)
    throw usage(
      `the file of ${label} (${file}) is ${stat.size} bytes, more than the ${SECRET_LIMITS.valueBytes / 1024} KiB a secret may have`,
    );
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(fs.readFileSync(file));
  } catch (error) {
    if (error instanceof TypeError)
      throw usage(`the file of ${label} (${file}) is not UTF-8 text: secrets must be text`);
    throw usage(`cannot read the file of ${label} (${file}): ${(error as Error).message}`);
  }
}

/**
 * "NAME=VALUE" items (as --secret takes them), or a bare "NAME" whose value
 * comes from pyro's own environment (so it never shows in a process list).
 * Errors name an item by its place, never its content: it may be a value.
 */
function parseSecretArgs(args: string[]): GivenSecret[] {
  return args.map((arg, i) => {
    const label = `the ${ordinal(i + 1)} --secret`;
    const eq = arg.indexOf("=");
    if (eq !== -1) return { name: arg.slice(0, eq), label, value: arg.slice(eq + 1) };
    const value = secretNameProblem(arg) === undefined ? process.env[arg] : undefined;
    if (value === undefined)
      throw usage(
        `${label} has no '=' and names none of pyro's environment variables (not shown, in case it is a value)`,
        "give NAME=VALUE, or export NAME=… and give NAME",
      );
    return { name: arg, label: `secret ${arg}`, value };
  });
}

/** "NAME=PATH" items, as --secret-file takes them. */
function parseSecretFileArgs(args: string[]): GivenSecret[] {
  return args.map((arg) => {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw usage(`--secret-file ${arg}: give NAME=PATH`);
    const name = arg.slice(0, eq);
    return { name, label: `secret ${name}`, file: arg.slice(eq + 1) };
  });
}

export function storeSecrets(ctx: WorkspaceContext, id: string, values: Record<string, string>) {
  if (Object.keys(values).length === 0) return;
  writeFileAtomic(ctx.store.file(id, SECRETS_FILE), JSON.stringify(values), 0o600);
}

/**
 * The values of a workspace's secrets. A store that is missing or damaged is
 * an error, never "no secrets": output would then go out unredacted.
 */
export function readSecrets(
  ctx: WorkspaceContext,
  record: WorkspaceRecord,
): Record<string, string> {
  if (!record.secrets?.length) return {};
  const values = readJsonFile<Record<string, unknown>>(ctx.store.file(record.id, SECRETS_FILE));
  if (!values || record.secrets.some((name) => typeof values[name] !== "string")) {
    throw new PyroError(
      ErrorCodes.Internal,
      `the secret store of ${record.name ?? record.id} is missing or damaged: pyro cannot redact its secrets`,
      { hint: "delete the workspace and create it again with its secrets" },
    );
  }
  return values as Record<string, string>;
}

/** Write the workspace's secrets into its (started) guest, replacing what is there. */
export async function materializeSecrets(
  ctx: WorkspaceContext,
  record: WorkspaceRecord,
): Promise<void> {
  if (!record.secrets?.length) return;
  const secrets = Object.fromEntries(
    Object.entries(readSecrets(ctx, record)).map(([name, value]) => [
      name,
      Buffer.from(value).toString("base64"),
    ]),
  );
  await ctx.withAgent(record.id, (agent) => agent.request("secrets_set", { secrets }));
}

/**
 * What redacts this workspace's secrets: nothing for a workspace without
 * any, or one that does not exist (the operation reports that). A damaged
 * store throws (see readSecrets) unless `lenient`, for payloads that carry
 * nothing from the guest (list, delete).
 */
export function redactorFor(
  ctx: WorkspaceContext,
  target: string | WorkspaceRecord,
  options: { lenient?: boolean } = {},
): Redactor {
  let record: WorkspaceRecord;
  try {
    record = typeof target === "string" ? ctx.store.resolve(target) : target;
  } catch {
    return new Redactor();
  }
  try {
    return new Redactor(Object.values(readSecrets(ctx, record)));
  } catch (error) {
    if (options.lenient) return new Redactor();
    throw error;
  }
}

/** An error with the workspace's secrets redacted from everything it says. */
export function redactError(redactor: Redactor, error: unknown): unknown {
  if (!redactor.active) return error;
  if (isPyroError(error)) {
    const redacted = new PyroError(error.code, redactor.redact(error.message), {
      ...(error.hint === undefined ? {} : { hint: redactor.redact(error.hint) }),
      ...(error.fix === undefined ? {} : { fix: redactor.redactDeep(error.fix) }),
      ...(error.details === undefined ? {} : { details: redactor.redactDeep(error.details) }),
    });
    redacted.stack = redactor.redact(error.stack ?? "");
    return redacted;
  }
  if (error instanceof Error) {
    const redacted = new Error(redactor.redact(error.message));
    redacted.stack = redactor.redact(error.stack ?? "");
    return redacted;
  }
  return error;
}

/** The guest's form of a call's secret environment, checked against the workspace's secrets. */
export function secretEnvFor(
  record: WorkspaceRecord,
  spec: SecretEnvSpec | undefined,
): SecretEnv | undefined {
  if (spec === undefined) return undefined;
  const pairs: [string, string][] = Array.isArray(spec)
    ? spec.map((item) => {
        const eq = item.indexOf("=");
        // NAME=VAR: the secret NAME as the environment variable VAR.
        return eq === -1 ? [item, item] : [item.slice(eq + 1), item.slice(0, eq)];
      })
    : Object.entries(spec);
  if (pairs.length === 0) return undefined;
  const known = record.secrets ?? [];
  const env: SecretEnv = {};
  for (const [variable, name] of pairs) {
    const problem = secretNameProblem(variable);
    if (problem) throw usage(`secret env: ${problem}`);
    if (!known.includes(name)) {
      throw new PyroError(
        ErrorCodes.SecretNotFound,
        `workspace ${record.name ?? record.id} has no secret named ${name}`,
        { fix: { kind: "find_secret", workspace: record.name ?? record.id, known } },
      );
    }
    env[variable] = name;
  }
  return env;
}
