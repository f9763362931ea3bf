import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkServerName, readServeArgs, serveArgs, serverLaunch } from "./launch.js";

describe("serverLaunch", () => {
  it("is absolute node + dist/cli.js + mcp serve flags, carrying PYRO_HOME", () => {
    const launch = serverLaunch(
      { mode: "repro-fix", environment: "debian:12", projectPath: "." },
      { PYRO_HOME: "rel/home" },
    );
    expect(path.isAbsolute(launch.command)).toBe(true);
    expect(launch.args[0]).toMatch(/^\/.*\/dist\/cli\.js$/);
    expect(launch.args.slice(1)).toEqual([
      "mcp",
      "serve",
      "--mode",
      "repro-fix",
      "--environment",
      "debian:12",
      "--project-path",
      process.cwd(),
    ]);
    expect(launch.env).toEqual({ PYRO_HOME: path.resolve("rel/home") });
  });

  it("refuses options `mcp serve` would refuse", () => {
    expect(() => serveArgs({ projectPath: ".", repoUrl: "https://x" })).toThrow(/not both/);
    expect(() => serveArgs({ repoRef: "main" })).toThrow(/needs --repo-url/);
    expect(() => serveArgs({ projectPath: path.join(os.tmpdir(), "no-such-dir-pyro") })).toThrow(
      /not a directory/,
    );
    expect(() => serveArgs({ mode: "nope" as never })).toThrow(/unknown mode/);
  });

  it("accepts only names hosts accept", () => {
    expect(checkServerName("pyro-2_x")).toBe("pyro-2_x");
    expect(() => checkServerName("bad name")).toThrow(/not valid/);
  });
});

describe("readServeArgs", () => {
  it("reads back what serveArgs wrote", () => {
    const options = {
      mode: "inspect",
      profile: "workspace-full",
      repoUrl: "https://r",
      repoRef: "v1",
    } as const;
    expect(readServeArgs(["/cli.js", ...serveArgs(options)])).toEqual({
      serve: true,
      options,
      dropped: [],
    });
  });

  it("drops flags and values this pyro does not take, and a project that is gone", () => {
    const read = readServeArgs([
      "/cli.js",
      "mcp",
      "serve",
      "--mode=wrong-mode",
      "--old-flag",
      "--profile",
      "vm-run",
      "--project-path",
      "/no/such/checkout",
      "--repo-ref",
      "main",
    ]);
    expect(read.options).toEqual({ profile: "vm-run" });
    expect(read.dropped).toEqual([
      "--mode wrong-mode",
      "--old-flag",
      "--project-path /no/such/checkout",
      "--repo-ref main",
    ]);
  });

  it("says when the args do not run mcp serve", () => {
    expect(readServeArgs(["/cli.js", "doctor"]).serve).toBe(false);
  });
});
