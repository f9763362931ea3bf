import type { ESLint, Rule } from "eslint";

export const LAYERS: Record<string, number>;
export const layersRule: Rule.RuleModule;
declare const plugin: ESLint.Plugin;
export default plugin;
