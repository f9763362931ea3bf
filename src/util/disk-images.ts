import fs from "node:fs";
import { ErrorCodes } from "../errors.js";
import { runCommand } from "./process.js";

/**
 * mkfs.ext4 -d builds the filesystem from a directory without loop mounts.
 * The raw image is sparse; `qemu-img convert` drops the zeros into a compact
 * qcow2 that serves as the read-only base under every VM's overlay.
 */
export async function buildExt4Image(
  sourceDir: string,
  rawPath: string,
  outputPath: string | undefined,
  label: string,
  sizeMib: number,
): Promise<void> {
  fs.rmSync(rawPath, { force: true });
  await runCommand(
    "mkfs.ext4",
    [
      "-q",
      "-F",
      "-L",
      label,
      "-d",
      sourceDir,
      "-E",
      "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0",
      "-m",
      "0",
      rawPath,
      `${sizeMib}M`,
    ],
    { errorCode: ErrorCodes.EnvironmentBuildFailed },
  );
  if (outputPath === undefined) return;
  await runCommand("qemu-img", ["convert", "-O", "qcow2", rawPath, outputPath], {
    errorCode: ErrorCodes.EnvironmentBuildFailed,
  });
  fs.rmSync(rawPath, { force: true });
}
