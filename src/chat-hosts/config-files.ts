/**
 * Reading and editing hosts' config files without disturbing them: one
 * entry is set, every other byte (other servers, comments, settings) stays.
 * JSON and JSONC are spliced where jsonc-parser's tree says; TOML is edited
 * as text, one table at a time; either is parsed again to check the result.
 */
import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import {
  createScanner,
  findNodeAtLocation,
  parse as parseJsonc,
  parseTree,
  type Node as JsonNode,
  type ParseError,
} from "jsonc-parser";
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";
import { writeFileAtomic } from "../config/paths.js";
import { ErrorCodes, PyroError } from "../errors.js";

export type ConfigFormat = "json" | "toml";

/** The text of a config file, or undefined if there is none. */
export function readConfigText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Parse a config file's text; a clear error names the file if it is broken. */
export function parseConfig(file: string, format: ConfigFormat, text: string): unknown {
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  if (text.trim() === "") return {};
  if (format === "toml") {
    try {
      return parseToml(text);
    } catch (error) {
      throw brokenFile(file, (error as Error).message.split("\n")[0] ?? "");
    }
  }
  const errors: ParseError[] = [];
  const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true });
  if (errors.length > 0) throw brokenFile(file, `a syntax error at offset ${errors[0]!.offset}`);
  return value;
}

function brokenFile(file: string, detail: string): PyroError {
  return new PyroError(ErrorCodes.UsageError, `${file} is not valid: ${detail}`, {
    hint: "fix or move that file; pyro edits only files it can parse, so nothing was changed",
  });
}

/** The value at a path of keys in a parsed config, if any. */
export function valueAt(config: unknown, keys: readonly string[]): unknown {
  let value = config;
  for (const key of keys) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Render a whole config document (for print-config and new files). */
export function renderConfig(format: ConfigFormat, document: Record<string, unknown>): string {
  return format === "toml"
    ? stringifyToml(document) + "\n"
    : JSON.stringify(document, null, 2) + "\n";
}

/**
 * The file's text with `entry` set at `keys` (replacing what was there),
 * everything else as it was; `fresh` is the whole document for a new file.
 */
export function withEntry(
  file: string,
  format: ConfigFormat,
  text: string | undefined,
  keys: readonly string[],
  entry: Record<string, unknown>,
  fresh: Record<string, unknown>,
): string {
  if (text === undefined || text.trim() === "") return renderConfig(format, fresh);
  // A byte-order mark is kept, and kept out of the parsers' way.
  if (text.startsWith("\uFEFF")) {
    return "\uFEFF" + withEntry(file, format, text.slice(1), keys, entry, fresh);
  }
  parseConfig(file, format, text);
  const next =
    format === "toml" ? tomlWithTable(text, keys, entry) : jsonWithValue(text, keys, entry);
  // Whatever the edit did, the file must parse, hold exactly the entry, and
  // hold everything else it held before.
  let same = false;
  try {
    const before = parseConfig(file, format, text);
    const after = parseConfig(file, format, next);
    same =
      isDeepStrictEqual(plain(valueAt(after, keys)), plain(entry)) &&
      isDeepStrictEqual(without(before, keys), without(after, keys));
  } catch {
    same = false;
  }
  if (!same) {
    throw new PyroError(ErrorCodes.UsageError, `could not set ${keys.join(".")} in ${file}`, {
      hint: "its layout is unusual: add the entry by hand (`pyro host print-config` prints it)",
    });
  }
  return next;
}

/**
 * A config as plain data without the value at `keys`, and without the
 * parents that leaves empty (an edit may have had to create them).
 */
function without(config: unknown, keys: readonly string[]): unknown {
  const copy = plain(config);
  const chain: Record<string, unknown>[] = [];
  let node = copy;
  for (const key of keys.slice(0, -1)) {
    if (typeof node !== "object" || node === null) return copy;
    chain.push(node as Record<string, unknown>);
    node = (node as Record<string, unknown>)[key];
  }
  if (typeof node !== "object" || node === null) return copy;
  delete (node as Record<string, unknown>)[keys[keys.length - 1]!];
  for (let i = chain.length - 1; i >= 0; i--) {
    const child = chain[i]![keys[i]!];
    if (typeof child === "object" && child !== null && Object.keys(child).length === 0) {
      delete chain[i]![keys[i]!];
    } else break;
  }
  return copy;
}

/** Plain data (TOML parsers may give objects without a prototype). */
function plain(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/**
 * Set a value in JSON(C) text by splicing: the new or replaced value is the
 * only text that changes (a formatter would also re-flow its neighbours).
 */
function jsonWithValue(text: string, keys: readonly string[], entry: unknown): string {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const unit = /\n(\t| +)"/.exec(text)?.[1] ?? "  ";
  const render = (value: unknown, level: number) =>
    JSON.stringify(value, null, unit)
      .split("\n")
      .join(eol + unit.repeat(level));
  const tree = parseTree(text, [], { allowTrailingComma: true });
  if (!tree) return text;
  const existing = findNodeAtLocation(tree, [...keys]);
  if (existing) {
    const end = existing.offset + existing.length;
    return text.slice(0, existing.offset) + render(entry, keys.length) + text.slice(end);
  }
  // The deepest object on the path that exists gets the rest of the path as one new property.
  let depth = keys.length - 1;
  let parent: JsonNode | undefined;
  for (; depth >= 0; depth--) {
    parent = depth === 0 ? tree : findNodeAtLocation(tree, keys.slice(0, depth));
    if (parent) break;
  }
  if (!parent || parent.type !== "object") return text;
  let value = entry;
  for (const key of keys.slice(depth + 1).reverse()) value = { [key]: value };
  const level = depth + 1;
  const property = `${JSON.stringify(keys[depth])}: ${render(value, level)}`;
  const properties = parent.children ?? [];
  if (properties.length === 0) {
    const at = parent.offset + 1;
    const close = eol + unit.repeat(level - 1);
    return text.slice(0, at) + eol + unit.repeat(level) + property + close + text.slice(at);
  }
  const last = properties[properties.length - 1]!;
  const end = last.offset + last.length;
  const { at, comma } = afterProperty(text, end);
  // A missing comma goes right after the value, never into a comment that follows it.
  const head = comma ? text.slice(0, at) : `${text.slice(0, end)},${text.slice(end, at)}`;
  return head + eol + unit.repeat(level) + property + text.slice(at);
}

/** Where to insert after a property: past a trailing comma and a comment on the same line. */
function afterProperty(text: string, end: number): { at: number; comma: boolean } {
  const scanner = createScanner(text, false);
  scanner.setPosition(end);
  let at = end;
  let comma = false;
  for (;;) {
    const token = scanner.scan();
    if (token === COMMA && !comma) comma = true;
    else if (token !== TRIVIA && token !== LINE_COMMENT && token !== BLOCK_COMMENT) break;
    at = scanner.getTokenOffset() + scanner.getTokenLength();
  }
  return { at, comma };
}

// jsonc-parser's SyntaxKind values (a const enum its types cannot share with esbuild).
const COMMA = 5;
const LINE_COMMENT = 12;
const BLOCK_COMMENT = 13;
const TRIVIA = 15;

/** A TOML table header (`[a.b]` or `[[a.b]]`; quoted parts may hold `]`), with its dotted key. */
const HEADER = /^\s*\[\[?\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\]"'#])+?)\s*\]\]?\s*(?:#.*)?$/;

/** The dotted key of a header, unquoted: `mcp_servers."pyro"` → ["mcp_servers", "pyro"]. */
function headerKeys(raw: string): string[] {
  return (raw.match(/"(?:[^"\\]|\\.)*"|'[^']*'|[^.\s]+/g) ?? []).map((part) => {
    if (part.startsWith("'")) return part.slice(1, -1);
    if (!part.startsWith('"')) return part;
    try {
      return JSON.parse(part) as string;
    } catch {
      return part; // a TOML-only escape: never equal to a key pyro writes
    }
  });
}

const isCommentOrBlank = (line: string) => /^\s*(#.*)?$/.test(line);

/**
 * Replace the table at `keys` (and its sub-tables) with `entry`, appended
 * at the end. A key defined some other way (inline, dotted) is refused by
 * the check in withEntry, never guessed at.
 */
function tomlWithTable(
  text: string,
  keys: readonly string[],
  entry: Record<string, unknown>,
): string {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text.split(/\r?\n/);
  const kept: string[] = [];
  let skipped: string[] = [];
  let skipping = false;
  // Comments and blank lines that end a skipped table belong to what follows it.
  const giveBackTrailing = () => {
    let start = skipped.length;
    while (start > 0 && isCommentOrBlank(skipped[start - 1]!)) start--;
    kept.push(...skipped.slice(start));
    skipped = [];
  };
  for (const line of lines) {
    const header = HEADER.exec(line);
    if (header) {
      const at = headerKeys(header[1]!);
      const ours = keys.every((key, i) => at[i] === key);
      if (skipping && !ours) giveBackTrailing();
      skipping = ours;
    }
    if (skipping) skipped.push(line);
    else kept.push(line);
  }
  if (skipping) giveBackTrailing();
  while (kept.length > 0 && kept[kept.length - 1]!.trim() === "") kept.pop();
  let table: Record<string, unknown> = entry;
  for (const key of [...keys].reverse()) table = { [key]: table };
  const rendered = stringifyToml(table).trim().split("\n").join(eol);
  return (kept.length ? kept.join(eol) + eol + eol : "") + rendered + eol;
}

/**
 * Write a config file atomically, keeping its mode (owner-only if new, or
 * always when `secret`: the entry holds a token).
 */
export function writeConfig(file: string, text: string, options: { secret?: boolean } = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let mode = 0o600;
  try {
    mode = fs.statSync(file).mode & 0o777;
  } catch {
    // a new file
  }
  // A symlinked config (dotfile managers) is written through: the link stays.
  let target = file;
  try {
    target = fs.realpathSync(file);
  } catch {
    // not there yet
  }
  writeFileAtomic(target, text, options.secret ? mode & 0o700 : mode);
}
