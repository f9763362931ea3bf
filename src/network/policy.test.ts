import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import { parsePublish } from "../workspaces/ports.js";
import { parseAllowedHostPorts, parseNetworkPolicy } from "./policy.js";

describe("network policy input", () => {
  it("names the three policies when given another", () => {
    expect(parseNetworkPolicy("egress")).toBe("egress");
    expect(() => parseNetworkPolicy("on")).toThrow(
      'unknown network policy "on": use one of off, egress, egress+published-ports',
    );
  });

  it("takes allowed host ports only with a network, deduplicated and checked", () => {
    expect(parseAllowedHostPorts("egress", ["11434", 8080, "8080"])).toEqual([8080, 11434]);
    expect(parseAllowedHostPorts("off", [])).toEqual([]);
    expect(() => parseAllowedHostPorts("off", [8080])).toThrow(/needs a network/);
    expect(() => parseAllowedHostPorts("egress", ["http"])).toThrow(/port from 1 to 65535/);
    expect(() => parseAllowedHostPorts("egress", [70000])).toThrow(/port from 1 to 65535/);
  });

  it("reads --publish as GUEST or HOST:GUEST", () => {
    expect(parsePublish("8000")).toEqual({ hostPort: undefined, guestPort: 8000 });
    expect(parsePublish(8000)).toEqual({ hostPort: undefined, guestPort: 8000 });
    expect(parsePublish("18000:8000")).toEqual({ hostPort: 18000, guestPort: 8000 });
    for (const bad of ["", "a:80", "80:", "1:2:3", "0", "99999"]) {
      try {
        parsePublish(bad);
        expect.unreachable(`${bad} was accepted`);
      } catch (error) {
        expect((error as { code: string }).code).toBe(ErrorCodes.UsageError);
      }
    }
  });
});
