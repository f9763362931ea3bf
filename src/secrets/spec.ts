/**
 * What a secret is (contract §4 "Secrets"): a name that is also a valid
 * environment variable name, and a text value small enough to keep in
 * memory and long enough to redact without mangling ordinary output.
 * Shared by the host (checks at create) and the guest agent.
 */

export const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const SECRET_LIMITS = {
  /** Bytes of one value (a literal or a file). */
  valueBytes: 64 * 1024,
  /** Characters a value needs at least: every occurrence of it in output is replaced. */
  valueMinChars: 4,
  /** Characters of a name. */
  nameChars: 64,
  /** Secrets per workspace. */
  count: 32,
  /** Bytes of all of a workspace's secrets together (they travel to the guest in one message). */
  totalBytes: 512 * 1024,
} as const;

/** Where the guest keeps them: one file per secret, root-only, on tmpfs. */
export const GUEST_SECRETS_DIR = "/run/pyro-secrets";

/** Why `name` is not a valid secret (or environment variable) name, or undefined. */
export function secretNameProblem(name: string): string | undefined {
  if (!SECRET_NAME_PATTERN.test(name))
    return `"${name}" is not a valid name: use letters, digits and _, not starting with a digit`;
  if (name.length > SECRET_LIMITS.nameChars)
    return `"${name.slice(0, 20)}…" is longer than ${SECRET_LIMITS.nameChars} characters`;
  return undefined;
}

/**
 * Why `value` cannot be a secret's value, or undefined; `label` names the
 * secret in the message ("secret API_TOKEN"). The value itself is never quoted.
 */
export function secretValueProblem(label: string, value: string): string | undefined {
  const bytes = Buffer.byteLength(value);
  if (bytes > SECRET_LIMITS.valueBytes)
    return `${label} is ${bytes} bytes, more than the ${SECRET_LIMITS.valueBytes / 1024} KiB a secret may have`;
  if (value.includes("\0")) return `${label} contains a NUL byte: secrets must be text`;
  if (value.includes("\uFFFD"))
    return `${label} is not UTF-8 text: pyro redacts secrets from text output, so they must be text`;
  if (value.replace(/[\r\n]+$/, "").length < SECRET_LIMITS.valueMinChars)
    return `${label} is shorter than ${SECRET_LIMITS.valueMinChars} characters: every occurrence of it in output would be replaced`;
  return undefined;
}
