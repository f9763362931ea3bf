/**
 * How an MCP tool is defined: name, schemas, annotations, a description
 * written for a model, and a handler that calls the SDK. `defineTool` infers
 * the handler's argument types from the zod shape, so handlers never cast.
 * A tool that acts on one workspace is defined with `defineWorkspaceTool`:
 * its id parameter is added by the definition (`workspace_id`), which is what
 * lets `vm_*` twins (`vm_id`) be derived from one definition.
 *
 * Handlers hold no business logic: they shape SDK payloads for a model. The
 * structured result is complete on its own (some hosts hand the model only
 * that): what the text says beyond the payload's fields (what was cut, how to
 * get the rest, what to do next) is in its `notes` too. The text is a
 * readable rendering of the same payload.
 */
import * as z from "zod";
import type { ToolAnnotations } from "@modelcontextprotocol/server";
import { CATALOG, ErrorCodes, PyroError, type ProjectSource, type Pyro } from "../index.js";
import type { Feature, Surface, ToolName } from "./catalog.js";

export interface ToolContext {
  pyro: Pyro;
  surface: Surface;
  /** Environment for workspace_create and vm_run when the call names none. */
  environment: string;
  /** The default seed of workspace_create (contract §6), when there is one. */
  project: ProjectSource | undefined;
}

export interface ToolOutput {
  payload: Record<string, unknown>;
  text: string;
}

/** What one call has besides its arguments. */
export interface CallContext {
  /** Tell the client the call is alive, with a short message (MCP progress; a no-op without a progress token). */
  progress(message: string): void;
  /** Aborted when the client cancels the call. */
  signal?: AbortSignal;
}

export const NO_CALL_CONTEXT: CallContext = { progress: () => {} };

/** Every result may carry notes; they are declared once here, not in each tool's output schema. */
const notesField = {
  notes: z
    .array(z.string())
    .optional()
    .describe(
      "what the result says beyond its fields: what was cut and how to get the rest, what to do next",
    ),
};

interface Common<S extends z.ZodRawShape> {
  name: ToolName;
  title: string;
  description(ctx: ToolContext): string;
  /** The parameters (without a workspace tool's id). */
  input(ctx: ToolContext): S;
  /** Parameters that exist only where the surface has their feature. */
  gated?: Partial<Record<keyof S & string, Feature>>;
  output: z.ZodObject;
  annotations: ToolAnnotations;
}

/** A registered tool, its parameter types erased: what the server iterates over. */
export interface Tool {
  name: ToolName;
  title: string;
  description(ctx: ToolContext): string;
  inputSchema(ctx: ToolContext): z.ZodObject;
  output: z.ZodObject;
  annotations: ToolAnnotations;
  call(raw: unknown, ctx: ToolContext, call?: CallContext): Promise<ToolOutput>;
  /** For workspace tools: the same tool under another name, its id parameter renamed. */
  twin?(spec: TwinSpec): Tool;
}

export interface TwinSpec {
  name: ToolName;
  title: string;
  description: string;
  idParam: string;
  idDescription: string;
  /** Ids of this kind only (vm_ tools take vm_ ids). */
  kind?: "vm";
}

export type Args<S extends z.ZodRawShape> = z.infer<z.ZodObject<S>>;

export const workspaceId = z
  .string()
  .min(1)
  .describe("the workspace's id (ws_…) or its name, as workspace_create or workspace_list gave it");

/** The parameters a surface shows: gated ones only where their feature is present. */
function visible<S extends z.ZodRawShape>(def: Common<S>, ctx: ToolContext): z.ZodRawShape {
  const gated: Partial<Record<string, Feature>> = def.gated ?? {};
  return Object.fromEntries(
    Object.entries(def.input(ctx)).filter(([param]) => {
      const feature = gated[param];
      return feature === undefined || ctx.surface.features.has(feature);
    }),
  );
}

/** Parse a call's arguments; any for a parameter the surface hides are dropped, whatever was sent. */
function parseArgs<S extends z.ZodRawShape>(
  def: Common<S>,
  ctx: ToolContext,
  raw: unknown,
): Args<S> {
  const args: Record<string, unknown> = z.object(def.input(ctx)).parse(raw);
  for (const [param, feature] of Object.entries(def.gated ?? {})) {
    if (feature !== undefined && !ctx.surface.features.has(feature)) delete args[param];
  }
  return args as Args<S>;
}

export function defineTool<S extends z.ZodRawShape>(
  def: Common<S> & {
    run(args: Args<S>, ctx: ToolContext, call: CallContext): Promise<ToolOutput>;
  },
): Tool {
  return {
    name: def.name,
    title: def.title,
    description: def.description,
    inputSchema: (ctx) => z.object(visible(def, ctx)),
    output: def.output.extend(notesField),
    annotations: def.annotations,
    // The server validated against inputSchema already; parsing again types the arguments.
    call: (raw, ctx, call = NO_CALL_CONTEXT) => def.run(parseArgs(def, ctx, raw), ctx, call),
  };
}

export function defineWorkspaceTool<S extends z.ZodRawShape>(
  def: Common<S> & {
    run(id: string, args: Args<S>, ctx: ToolContext, call: CallContext): Promise<ToolOutput>;
  },
): Tool {
  const build = (idParam: string, idSchema: z.ZodString, meta: Partial<TwinSpec>): Tool => ({
    name: meta.name ?? def.name,
    title: meta.title ?? def.title,
    description: meta.description ? () => meta.description! : def.description,
    inputSchema: (ctx) => z.object({ [idParam]: idSchema, ...visible(def, ctx) }),
    output: def.output.extend(notesField),
    annotations: def.annotations,
    call: async (raw, ctx, call = NO_CALL_CONTEXT) => {
      const id = z.object({ [idParam]: idSchema }).parse(raw)[idParam]!;
      const checked = meta.kind === "vm" ? checkVmId(id) : id;
      return def.run(checked, parseArgs(def, ctx, raw), ctx, call);
    },
    twin: (spec) => build(spec.idParam, z.string().min(1).describe(spec.idDescription), spec),
  });
  return build("workspace_id", workspaceId, {});
}

/** vm_* tools act on VMs of vm_create only: a workspace has its own tools. */
export function checkVmId(id: string): string {
  // The whole id, not a prefix: a workspace may be named vm_something.
  if (!/^vm_[0-9a-f]{12}$/.test(id)) {
    throw new PyroError(ErrorCodes.UsageError, `${id} is not a VM made by vm_create`, {
      hint: "vm_* tools take vm_… ids; for a workspace use the workspace_* tools",
    });
  }
  return id;
}

export const READ_ONLY: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};
export const CHANGES_WORKSPACE: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false,
};
export const DESTRUCTIVE: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: false,
  openWorldHint: false,
};

/** A note, or nothing (so callers can write `cond && "note"`). */
export type Note = string | false | null | undefined;

/**
 * A payload with a text copy (its JSON when no text is given) and notes:
 * what the text says beyond the payload's fields, in both (text lines
 * `note: …`, structured `notes`).
 */
export function json(payload: object, text?: string, notes: Note[] = []): ToolOutput {
  const kept = notes.filter((n): n is string => typeof n === "string" && n.length > 0);
  const full = { ...payload, ...(kept.length ? { notes: kept } : {}) };
  const body = text ?? JSON.stringify(payload, null, 2);
  return {
    payload: full,
    text: kept.length ? `${body}\n${kept.map((n) => `note: ${n}`).join("\n")}` : body,
  };
}

export const loose = <T extends z.ZodRawShape>(shape: T) => z.looseObject(shape);

const ENVIRONMENT_NAMES = CATALOG.map((e) => e.name) as [string, ...string[]];

/** The environment parameter of workspace_create, vm_create and vm_run: the catalog, as an enum. */
export function environmentParam(ctx: ToolContext) {
  return z
    .enum(ENVIRONMENT_NAMES)
    .optional()
    .describe(
      `the Linux environment to boot (default ${ctx.environment}): ${CATALOG.map((e) => `${e.name}: ${e.description}`).join("; ")}`,
    );
}

/** The secret_env parameter of exec, services and shells (feature "secrets"). */
export const secretEnvParam = z
  .array(z.string())
  .optional()
  .describe(
    'secrets of the workspace to set as environment variables: "NAME" (as $NAME) or "NAME=VAR" (as $VAR); values never appear in output ([REDACTED])',
  );
