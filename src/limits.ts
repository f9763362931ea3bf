/**
 * Defaults, bounds and output caps (contract §10), defined once. The SDK
 * publishes them; CLI help, the MCP tools' schemas and every layer's
 * validation read them from here, so a number never drifts between faces.
 */

/** What an operation uses when the caller says nothing. */
export const DEFAULTS = {
  vcpuCount: 1,
  memMib: 1024,
  /** A command is killed (with its process group) after this long. */
  execTimeoutSeconds: 30,
  /** A VM made by MCP vm_create is deleted after this long unless told otherwise. */
  vmTtlSeconds: 600,
  /** File reads return at most this much unless asked for more. */
  fileReadBytes: 65536,
  /** Most VMs running at once ($PYRO_MAX_RUNNING overrides). */
  maxRunning: 4,
  /** How long an MCP exec call waits before handing back a command id (hosts time tools out at ~60 s). */
  execWaitSeconds: 20,
  /** A service not ready after this long is failed (its process group killed). */
  serviceReadyTimeoutSeconds: 30,
  /** Between two readiness checks of a service. */
  serviceReadyIntervalMs: 500,
  /** A shell's terminal size. */
  shellCols: 120,
  shellRows: 30,
  /** Characters one shell read returns at most. */
  shellMaxChars: 65536,
  /** Recommended quiet time for a shell read that waits for the shell to settle. */
  shellIdleMs: 300,
  /** A shell read that waits for idle returns after this long even if output keeps coming. */
  shellReadWaitSeconds: 20,
} as const;

/** What one seed takes at most. */
export const SEED_LIMITS = {
  /** A larger file is skipped (and reported in seed_skipped), not seeded. */
  fileBytes: 256 * 1024 * 1024,
} as const;

/** Inclusive bounds of what a caller may ask for. */
export const BOUNDS = {
  vcpuCount: { min: 1, max: 64 },
  memMib: { min: 256, max: 262144 },
  execTimeoutSeconds: { max: 24 * 3600 },
  execWaitSeconds: { min: 0, max: 45 },
  fileReadBytes: { min: 1, max: 1024 * 1024 },
  serviceReadyTimeoutSeconds: { max: 3600 },
  serviceReadyIntervalMs: { min: 50 },
  shellCols: { min: 20, max: 500 },
  shellRows: { min: 5, max: 200 },
  shellMaxChars: { min: 1, max: 1024 * 1024 },
  shellIdleMs: { max: 10_000 },
} as const;

/** Caps on output, from the guest to the model: each a layer of its own. */
export const OUTPUT_LIMITS = {
  /** Bytes of one command's stream collected (guest and host both stop there). */
  streamBytes: 4 * 1024 * 1024,
  /** Characters of each stream kept in a journal entry. */
  journalChars: 64 * 1024,
  /** Bytes of each stream shown while a command still runs (MCP exec handles). */
  liveTailBytes: 8 * 1024,
  /** Characters per stream or file handed to a model before it is cut with a note. */
  modelChars: 24 * 1024,
  /** Bytes of one file a patch may read and rewrite. */
  patchFileBytes: 16 * 1024 * 1024,
  /** Bytes of a service's log the guest keeps (current file plus one rotated) and a read returns. */
  serviceLogBytes: 2 * 1024 * 1024,
  /** Bytes of a shell's output the guest keeps for readers (older output is dropped, and reads say so). */
  shellRingBytes: 1024 * 1024,
  /** Bytes of input one shell write may send. */
  shellInputBytes: 64 * 1024,
} as const;
