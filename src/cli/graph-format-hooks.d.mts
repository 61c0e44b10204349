export const MARK: string;
export const MODULE_SYNTAX: RegExp;
export function resolve(specifier: string, context: { parentURL?: string }, nextResolve: (specifier: string, context: unknown) => Promise<{ url: string; format?: string }>): Promise<{ url: string; format?: string }>;
