/** The agent's file ops through the real host client: read_file, write_file, tar_out and tar_in. */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import {} from "../protocol/frames.js";
import { connect, rejection, scratch, settleWithin, useAgentHarness, waitFor } from "./testing.js";

useAgentHarness();

describe("read_file", () => {
  it("returns the content and size", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "f.bin");
    const bytes = randomBytes(150 * 1024 + 7);
    fs.writeFileSync(file, bytes);
    const result = await client.readFile(file, 10 * 1024 * 1024);
    expect(result.size).toBe(bytes.length);
    expect(result.truncated).toBe(false);
    expect(result.content.equals(bytes)).toBe(true);
  });

  it("reads an empty file", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "empty");
    fs.writeFileSync(file, "", { mode: 0o640 });
    fs.chmodSync(file, 0o640);
    await expect(client.readFile(file, 10)).resolves.toEqual({
      size: 0,
      mode: 0o640,
      truncated: false,
      content: Buffer.alloc(0),
    });
  });

  it("truncates at max_bytes", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "f.txt");
    fs.writeFileSync(file, "0123456789");
    const result = await client.readFile(file, 4);
    expect(result.content.toString()).toBe("0123");
    expect(result.truncated).toBe(true);
    expect(result.size).toBe(10);
  });

  it("is not truncated at exactly max_bytes", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "f.txt");
    fs.writeFileSync(file, "0123");
    const result = await client.readFile(file, 4);
    expect(result.content.toString()).toBe("0123");
    expect(result.truncated).toBe(false);
  });

  it("reports a missing file as not_found", async () => {
    const { client } = connect();
    const error = await rejection(client.readFile(path.join(scratch(), "missing.txt"), 100));
    expect(error.code).toBe(ErrorCodes.FileNotFound);
    expect(error.details).toEqual({ guest_code: "not_found" });
    expect(client.closed).toBe(false);
  });

  it("reports a directory as not_a_file", async () => {
    const { client } = connect();
    const error = await rejection(client.readFile(scratch("read"), 100));
    expect(error.details).toEqual({ guest_code: "not_a_file" });
  });
});

describe("write_file", () => {
  // Regression (fixed): the server runs each
  // handler a microtask after the Request, and write_file installs its
  // onData/onEof hooks only after `await open(tmp)`. Data and Eof frames that
  // arrive before that go to the server's no-op placeholders, so the content
  // is lost and, with the Eof lost too, the request never settles.
  it("writes the content with the mode, atomically via a rename", async () => {
    const { client } = connect();
    const dir = scratch("write");
    const file = path.join(dir, "out.txt");
    fs.writeFileSync(file, "old content");
    const oldInode = fs.statSync(file).ino;
    const content = randomBytes(200 * 1024);
    const result = await settleWithin(
      client.writeFile(file, content, { mode: 0o750 }),
      "write_file",
    );
    expect(result.bytes_written).toBe(content.length);
    expect(fs.readFileSync(file).equals(content)).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o750);
    // Replaced by rename (a new inode), not rewritten in place; no temp file left behind.
    expect(fs.statSync(file).ino).not.toBe(oldInode);
    expect(fs.readdirSync(dir)).toEqual(["out.txt"]);
  });

  it("never leaves a replaced file's mtime in the second of its previous one", async () => {
    // A .pyc or make rule keyed on whole-second mtimes would otherwise miss the change.
    const { client } = connect();
    const file = path.join(scratch("write"), "calc.py");
    for (const body of ["return a - b", "return a * b", "return a + b"]) {
      const before = fs.existsSync(file) ? Math.floor(fs.statSync(file).mtimeMs / 1000) : -1;
      await settleWithin(client.writeFile(file, Buffer.from(body)), "write_file");
      expect(Math.floor(fs.statSync(file).mtimeMs / 1000)).not.toBe(before);
    }
  });

  it("creates parent directories and defaults the mode to 0644", async () => {
    const { client } = connect();
    const file = path.join(scratch("write"), "a", "b", "c.txt");
    const result = await settleWithin(
      client.writeFile(file, Buffer.from("hi"), { parents: true }),
      "write_file",
    );
    expect(result.bytes_written).toBe(2);
    expect(fs.readFileSync(file, "utf8")).toBe("hi");
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
  });

  it("fails with not_found when the parent is missing and parents is not set", async () => {
    const { client } = connect();
    const file = path.join(scratch("write"), "missing", "c.txt");
    const error = await rejection(
      settleWithin(client.writeFile(file, Buffer.from("hi")), "write_file"),
    );
    expect(error.details).toEqual({ guest_code: "not_found" });
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it("writes an empty file", async () => {
    const { client } = connect();
    const file = path.join(scratch("write"), "empty");
    const result = await settleWithin(client.writeFile(file, Buffer.alloc(0)), "write_file");
    expect(result.bytes_written).toBe(0);
    expect(fs.readFileSync(file).length).toBe(0);
  });

  it("a cancelled write leaves neither the target nor a temp file", async () => {
    const { client } = connect();
    const dir = scratch("write");
    const file = path.join(dir, "never.txt");
    const input = new PassThrough(); // never ends
    const controller = new AbortController();
    const write = client.request(
      "write_file",
      { path: file },
      { input, signal: controller.signal },
    );
    input.write("partial");
    // Give the handler time to open its temp file before cancelling.
    await waitFor(() => fs.readdirSync(dir).length > 0, "the temp file");
    controller.abort();
    const error = await rejection(settleWithin(write, "cancelled write_file"));
    expect(error.details).toEqual({ guest_code: "cancelled" });
    expect(fs.readdirSync(dir)).toEqual([]);
    input.destroy();
  });
});

describe("tar_out / tar_in", () => {
  function populate(dir: string): Map<string, Buffer> {
    const files = new Map<string, Buffer>([
      ["a.txt", Buffer.from("alpha\n")],
      ["sub/b.bin", randomBytes(100 * 1024)],
      ["sub/deeper/c with space.txt", Buffer.from("gamma")],
      ["empty", Buffer.alloc(0)],
    ]);
    for (const [name, content] of files) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), content);
    }
    fs.chmodSync(path.join(dir, "a.txt"), 0o755);
    fs.symlinkSync("a.txt", path.join(dir, "link"));
    return files;
  }

  it("tar_out streams an archive the host's tar can read", async () => {
    const { client } = connect();
    const source = scratch("src");
    populate(source);
    const chunks: Buffer[] = [];
    const result = await client.tarOut(source, (b) => chunks.push(Buffer.from(b)));
    const archive = Buffer.concat(chunks);
    expect(result.bytes).toBe(archive.length);
    expect(archive.length % 512).toBe(0);
    const listed = await client.exec(
      { argv: ["tar", "-tf", "-"] },
      { input: archive }, // exercised via exec stdin rather than the host's child_process
    );
    const names = listed.stdout.toString().split("\n").filter(Boolean).sort();
    expect(names).toEqual(
      expect.arrayContaining(["./a.txt", "./sub/b.bin", "./sub/deeper/c with space.txt", "./link"]),
    );
  });

  it("tar_out of a missing directory is not_found", async () => {
    const { client } = connect();
    const error = await rejection(client.tarOut(path.join(scratch(), "nope"), () => {}));
    expect(error.details).toEqual({ guest_code: "not_found" });
  });

  // Regression (fixed): tar_in installs its hooks only after
  // `await mkdir(dir)`, so the archive's first Data frames and the Eof can be
  // dropped; see the write_file note above.
  it("tar_out then tar_in reproduces the files", async () => {
    const { client } = connect();
    const source = scratch("src");
    const files = populate(source);
    const chunks: Buffer[] = [];
    await client.tarOut(source, (b) => chunks.push(Buffer.from(b)));
    const archive = Buffer.concat(chunks);

    const target = path.join(scratch("dst"), "new");
    const result = await settleWithin(client.tarIn(target, archive), "tar_in");
    expect(result.bytes).toBe(archive.length);
    for (const [name, content] of files) {
      expect(fs.readFileSync(path.join(target, name)).equals(content)).toBe(true);
    }
    expect(fs.statSync(path.join(target, "a.txt")).mode & 0o777).toBe(0o755);
    expect(fs.readlinkSync(path.join(target, "link"))).toBe("a.txt");
  });

  it("tar_in of something that is not an archive fails with tar_failed", async () => {
    const { client } = connect();
    const target = scratch("dst");
    // Feed the garbage as a stream that starts after the handler is listening,
    // so this test exercises tar's failure rather than the hook race above.
    const input = new PassThrough();
    const tarIn = client.tarIn(target, input);
    setTimeout(() => input.end(Buffer.alloc(4096, "x")), 200);
    const error = await rejection(settleWithin(tarIn, "tar_in"));
    expect(error.details).toEqual({ guest_code: "tar_failed" });
    expect(error.message).toMatch(/tar exited/);
  });
});
