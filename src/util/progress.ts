/**
 * Progress for long work (builds, pulls, boots): a callback with human
 * messages. The CLI shows them on a TTY only (cli/progress.ts).
 */
export type ProgressFn = (message: string) => void;

export const silentProgress: ProgressFn = () => {};
