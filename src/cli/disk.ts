/** `pyro workspace disk …`: a stopped workspace's disk, offline; parsing and printing only. */
import type { Command } from "commander";
import { BOUNDS, DEFAULTS } from "../index.js";
import { act, positiveInt, sdk } from "./common.js";
import { formatBytes, printFileRead, printJson } from "./output.js";

interface JsonOpt {
  json?: boolean;
}

const PATH_HELP = "guest path (relative to /workspace unless absolute)";

export function registerDiskCommands(ws: Command): void {
  const disk = ws
    .command("disk")
    .description(
      "a stopped workspace's disk, read offline without booting (runtime-only paths such as /run and /tmp are left out)",
    );

  disk
    .command("list")
    .description("a directory's entries on the disk")
    .argument("<workspace>", "id or name")
    .argument("[path]", `directory: ${PATH_HELP}`, "/workspace")
    .option("--recursive", "list subdirectories too")
    .option("--json", "print as JSON")
    .action((id: string, dir: string, opts: JsonOpt & { recursive?: boolean }) =>
      act(!!opts.json, async () => {
        const listing = await sdk(!!opts.json).workspaces.listDisk(id, dir, {
          recursive: !!opts.recursive,
        });
        if (opts.json) return printJson(listing);
        for (const e of listing.entries) {
          process.stdout.write(
            `${e.type === "directory" ? `${e.path}/` : e.type === "symlink" ? `${e.path} -> ${e.link_target ?? "?"}` : e.path}\n`,
          );
        }
        if (listing.excluded.length)
          process.stderr.write(`pyro: runtime-only, not listed: ${listing.excluded.join(", ")}\n`);
        if (listing.truncated)
          process.stderr.write("pyro: listing truncated; list a subdirectory to see the rest\n");
      }),
    );

  disk
    .command("read")
    .description("a file on the disk, bounded")
    .argument("<workspace>", "id or name")
    .argument("<path>", `file: ${PATH_HELP}`)
    .option(
      "--max-bytes <n>",
      `read at most this much (default ${DEFAULTS.fileReadBytes}, at most ${BOUNDS.fileReadBytes.max})`,
      positiveInt("--max-bytes"),
    )
    .option("--content-only", "print only the content")
    .option("--json", "print as JSON")
    .action(
      (
        id: string,
        filePath: string,
        opts: JsonOpt & { maxBytes?: number; contentOnly?: boolean },
      ) =>
        act(!!opts.json, async () => {
          const read = await sdk(!!opts.json).workspaces.readDisk(id, filePath, {
            maxBytes: opts.maxBytes,
          });
          if (opts.json) return printJson(read);
          printFileRead(read, {
            contentOnly: opts.contentOnly,
            more: `use --max-bytes (up to ${BOUNDS.fileReadBytes.max}) to read more, or \`pyro workspace disk export\` for all of it`,
          });
        }),
    );

  disk
    .command("export")
    .description("the whole disk as a raw ext4 image")
    .argument("<workspace>", "id or name")
    .requiredOption("--output <file>", "where to write the raw ext4 image (must not exist)")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt & { output: string }) =>
      act(!!opts.json, async () => {
        const exported = await sdk(!!opts.json).workspaces.exportDisk(id, opts.output);
        if (opts.json) return printJson(exported);
        process.stderr.write(
          `exported the disk of ${exported.workspace_id} to ${exported.output} (raw ext4, ${formatBytes(exported.bytes)}, sparse)\n`,
        );
      }),
    );
}
