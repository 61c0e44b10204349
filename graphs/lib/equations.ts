// The equations of a worked math solution, as RFT (Yuan et al. 2023) reads them: GSM8K's calculator
// annotations ("<<48/2=24>>") and plain "a op b = c" equations in the text, each normalised (whitespace,
// number forms, operator spellings) so that two paths with the same calculations compare equal, and each
// checked by a small arithmetic evaluator. Pure functions; model text is never given to eval/Function.
//
// The evaluator's grammar: numbers (with thousands commas, decimals, an optional "$" before and "%" after,
// a percent being /100), + - * / ^ (right-associative), unary minus, parentheses and implicit multiplication
// ("2(3+4)", "(1+1)(2+3)": supported rather than skipped, so a step written that way is checked, not lost;
// the extractor skips the spaced form "2 (3+4)", which may be a number and an aside). Hostile input has a
// bounded cost: expressions over MAX_LENGTH characters or MAX_DEPTH nested levels are refused, exponents
// are floats (no big-integer blow-up) and a non-finite result is an error, never a hang or a crash.

/** Longest expression (characters) the evaluator reads; longer is `too_long`. */
export const MAX_LENGTH = 400;
/** Deepest nesting (parentheses, unary minus, powers) the evaluator follows; deeper is `too_deep`. */
export const MAX_DEPTH = 32;

export type EvalError = "syntax" | "division_by_zero" | "too_large" | "not_real" | "too_long" | "too_deep";
export type EvalResult = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly error: EvalError };

type Token = { kind: "num"; value: number; text: string } | { kind: "op"; text: string };

class Refused extends Error {
  constructor(readonly error: EvalError) {
    super(error);
  }
}

const NUMBER = /^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|^\.\d+/;

/** Canonical spelling of a number: no thousands commas, no needless zeros ("1,200.50" -> "1200.5"). */
function canonicalNumber(text: string): string {
  return String(Number(text.replace(/,/g, "")));
}

/** The tokens of an expression; `syntax` on anything outside the grammar (letters, stray commas). */
function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  let rest = spellOperators(expression);
  while (rest.length > 0) {
    const char = rest[0]!;
    if (/\s|\$/.test(char)) {
      rest = rest.slice(1);
      continue;
    }
    const number = NUMBER.exec(rest);
    if (number) {
      const text = canonicalNumber(number[0]);
      if (tokens.at(-1)?.text === ")") tokens.push({ kind: "op", text: "*" });
      tokens.push({ kind: "num", value: Number(text), text });
      rest = rest.slice(number[0].length);
      continue;
    }
    if (!"+-*/^()%".includes(char)) throw new Refused("syntax");
    const previous = tokens.at(-1);
    if (char === "(" && (previous?.kind === "num" || previous?.text === ")")) tokens.push({ kind: "op", text: "*" });
    tokens.push({ kind: "op", text: char });
    rest = rest.slice(1);
  }
  return tokens;
}

/** One spelling per operator: "×", "x", "·", "\times", "\cdot" -> "*"; "÷", "\div" -> "/"; "**" -> "^"; "−" -> "-". */
export function spellOperators(text: string): string {
  return text
    .replace(/\\times|\\cdot|[×·∙]/g, "*")
    .replace(/\\div|÷/g, "/")
    .replace(/\*\*/g, "^")
    .replace(/[−–](?=\s*[\d(.$])/g, "-")
    .replace(/(\d|\))\s*[xX]\s*(?=[\d($.])/g, "$1*");
}

/** Recursive descent over the tokens; every level counts toward MAX_DEPTH. */
class Parser {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): number {
    const value = this.sum(0);
    if (this.at !== this.tokens.length) throw new Refused("syntax");
    return value;
  }

  private peek(): string | undefined {
    const token = this.tokens[this.at];
    return token?.kind === "op" ? token.text : undefined;
  }

  private sum(depth: number): number {
    let value = this.product(depth);
    for (let op = this.peek(); op === "+" || op === "-"; op = this.peek()) {
      this.at++;
      const right = this.product(depth);
      value = op === "+" ? value + right : value - right;
    }
    return value;
  }

  private product(depth: number): number {
    let value = this.power(depth);
    for (let op = this.peek(); op === "*" || op === "/"; op = this.peek()) {
      this.at++;
      const right = this.power(depth);
      if (op === "/" && right === 0) throw new Refused("division_by_zero");
      value = op === "*" ? value * right : value / right;
    }
    return value;
  }

  // Depth is checked in unary, which every power level goes through.
  private power(depth: number): number {
    const base = this.unary(depth);
    if (this.peek() !== "^") return base;
    this.at++;
    return base ** this.power(depth + 1);
  }

  private unary(depth: number): number {
    if (depth > MAX_DEPTH) throw new Refused("too_deep");
    const op = this.peek();
    if (op === "-" || op === "+") {
      this.at++;
      const value = this.unary(depth + 1);
      return op === "-" ? -value : value;
    }
    return this.percent(this.primary(depth));
  }

  private percent(value: number): number {
    if (this.peek() !== "%") return value;
    this.at++;
    return value / 100;
  }

  private primary(depth: number): number {
    const token = this.tokens[this.at++];
    if (token?.kind === "num") return token.value;
    if (token?.text !== "(") throw new Refused("syntax");
    const value = this.sum(depth + 1);
    if (this.peek() !== ")") throw new Refused("syntax");
    this.at++;
    return value;
  }
}

/** The value of an arithmetic expression, or why it has none. Never throws. */
export function evaluate(expression: string): EvalResult {
  if (expression.length > MAX_LENGTH) return { ok: false, error: "too_long" };
  try {
    const tokens = tokenize(expression);
    if (tokens.length === 0) return { ok: false, error: "syntax" };
    const value = new Parser(tokens).parse();
    if (Number.isNaN(value)) return { ok: false, error: "not_real" };
    return Number.isFinite(value) ? { ok: true, value } : { ok: false, error: "too_large" };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, error: error.error };
    if (error instanceof RangeError) return { ok: false, error: "too_deep" };
    throw error;
  }
}

/** The expression in canonical form: its tokens joined without spaces ("1,200 x 3" -> "1200*3"); undefined outside the grammar. */
export function normalizeExpression(expression: string): string | undefined {
  if (expression.length > MAX_LENGTH) return undefined;
  try {
    const tokens = tokenize(expression);
    return tokens.length > 0 ? tokens.map((token) => token.text).join("") : undefined;
  } catch (error) {
    if (error instanceof Refused) return undefined;
    throw error;
  }
}

/** One equation of a solution, normalised. */
export interface Equation {
  /** Canonical left side ("17+28"). */
  readonly lhs: string;
  /** Canonical stated result ("45"). */
  readonly rhs: string;
  /** Where it starts in the text (orders annotations and plain equations). */
  readonly at: number;
}

/** The canonical form that path dedup compares: "17+28=45". */
export function equationKey(equation: Equation): string {
  return `${equation.lhs}=${equation.rhs}`;
}

const RESULT = /^\s*\$?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?)/;
// Characters an arithmetic left side is made of, scanned backwards from "=" (newlines end it).
const LHS_CHAR = /[\d.,+\-*/^()%$ \t]/;
const OPERATOR = /[+\-*/^]/;

/**
 * An equation from its two sides, or undefined when the left side is no arithmetic with an operator. A "-"
 * followed by a space is a bullet or a dash ("- 12 / 4 = 3"), not a minus, unless `spacedMinus` (the side
 * follows a "=", as in "x = - 3 + 5").
 */
function equationOf(left: string, right: string, at: number, spacedMinus = true): Equation | undefined {
  const start = left.search(spacedMinus ? /[\d(.$]|-(?=\s*[\d(.$])/ : /[\d(.$]|-(?=[\d(.$])/);
  if (start < 0) return undefined;
  const lhs = normalizeExpression(left.slice(start));
  const result = RESULT.exec(right);
  if (!lhs || !result || !OPERATOR.test(lhs.replace(/^-/, ""))) return undefined;
  const rhs = normalizeExpression(result[1]!);
  return rhs === undefined ? undefined : { lhs, rhs, at: at + start };
}

/** GSM8K's calculator annotations, "<<expression=result>>", with their positions. */
function annotations(text: string): { equations: Equation[]; rest: string } {
  const equations: Equation[] = [];
  const rest = text.replace(/<<([^<>\n]{0,400})>>/g, (whole, inner: string, at: number) => {
    const eq = inner.lastIndexOf("=");
    const equation = eq > 0 ? equationOf(inner.slice(0, eq), inner.slice(eq + 1), at) : undefined;
    if (equation) equations.push(equation);
    return " ".repeat(whole.length);
  });
  return { equations, rest };
}

/** A comma that separates clauses ("4, 4 * 3 = 12"), not thousands ("1,200"). */
function listComma(text: string, at: number): boolean {
  return text[at] === "," && !(/\d/.test(text[at - 1] ?? "") && /\d/.test(text[at + 1] ?? ""));
}

const NUMBER_END = /[\d%)]/;
const NUMBER_START = /[\d$.]/;

/**
 * Where the expression starts in the arithmetic-looking characters before a "=", in one pass; undefined
 * when it is ambiguous. Cut off before it: anything up to a "." that ends a sentence or a list marker
 * ("1. ", "3. "), up to an unmatched ")" ("2) ", "(a) "), up to an unmatched "(" (an aside, "7 (7 * 2"),
 * and a number before whitespace and another number ("(1) 5", "7 7 * 2": two numbers are never glued).
 * A number, whitespace and then "(" may be a product or an aside, so it is no equation.
 */
function expressionStart(span: string): number | undefined {
  let start = 0;
  let ambiguousAt = -1;
  let lastSolid = -1;
  const open: number[] = [];
  const cut = (at: number) => {
    start = at;
    open.length = 0;
  };
  for (let i = 0; i < span.length; i++) {
    const char = span[i]!;
    if (char === " " || char === "\t") continue;
    const spaced = lastSolid >= 0 && lastSolid < i - 1 && NUMBER_END.test(span[lastSolid]!);
    if (spaced && char === "(") ambiguousAt = i;
    if (spaced && NUMBER_START.test(char)) cut(i);
    if (char === "." && !/\d/.test(span[i + 1] ?? "")) cut(i + 1);
    else if (char === "(") open.push(i);
    else if (char === ")" && open.pop() === undefined) cut(i + 1);
    lastSolid = i;
  }
  if (open.length > 0) start = open.at(-1)! + 1;
  return start > ambiguousAt ? start : undefined;
}

/** Plain "a op b = c" equations: each "=" with arithmetic before it (back to the previous "=") and a number after. */
function plainEquations(text: string): Equation[] {
  const equations: Equation[] = [];
  let previous = -1;
  for (let eq = text.indexOf("="); eq >= 0; previous = eq, eq = text.indexOf("=", eq + 1)) {
    let start = eq;
    while (start > previous + 1 && LHS_CHAR.test(text[start - 1]!) && !listComma(text, start - 1)) start--;
    const offset = expressionStart(text.slice(start, eq));
    if (offset === undefined) continue;
    const afterEquals = previous >= 0 && start + offset === previous + 1;
    const equation = equationOf(text.slice(start + offset, eq), text.slice(eq + 1, eq + 40), start + offset, afterEquals);
    if (equation) equations.push(equation);
  }
  return equations;
}

/**
 * The equations of a solution in the order written: calculator annotations and plain equations, LaTeX and
 * Unicode operators read as + - * / ^. GSM8K writes each calculation twice ("48/2=<<48/2=24>>24"): a plain
 * equation equal to the one just before it counts once. Left sides outside the grammar ("2x = 10",
 * "Area = 40") are not equations here.
 */
export function extractEquations(text: string): Equation[] {
  const { equations: annotated, rest } = annotations(spellOperators(text));
  const all = [...annotated, ...plainEquations(rest)].sort((a, b) => a.at - b.at);
  return all.filter((equation, i) => i === 0 || equationKey(equation) !== equationKey(all[i - 1]!));
}

export type EquationCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly equation: string; readonly reason: "wrong" | EvalError; readonly value?: number };

/** Decimals written in a stated result ("3.33" -> 2): the precision it was rounded to. */
function decimals(rhs: string): number {
  return /\.(\d+)/.exec(rhs)?.[1]!.length ?? 0;
}

/**
 * Relative slack for floating-point noise alone (0.1 * 3 = 0.30000000000000004). Arithmetic is exact, so
 * an equation's check needs no more: an answer tolerance such as 1e-6 would pass "1234 * 3000 = 3702003",
 * off by 3 in 3.7 million.
 */
export const FLOAT_SLACK = 1e-9;

/**
 * Whether an equation's left side evaluates to its stated result. A result may be rounded to the
 * precision it is written in ("10/3 = 3.33" holds, "10/3 = 3.4" does not); an integer result must be exact
 * up to `tolerance` (relative; floating-point noise by default).
 */
export function checkEquation(equation: Equation, tolerance = FLOAT_SLACK): EquationCheck {
  const key = equationKey(equation);
  const left = evaluate(equation.lhs);
  if (!left.ok) return { ok: false, equation: key, reason: left.error };
  const stated = evaluate(equation.rhs);
  if (!stated.ok) return { ok: false, equation: key, reason: stated.error };
  const places = decimals(equation.rhs);
  const rounding = places > 0 ? 0.5 * 10 ** -places : 0;
  const slack = rounding + tolerance * Math.max(1, Math.abs(stated.value));
  return Math.abs(left.value - stated.value) <= slack ? { ok: true } : { ok: false, equation: key, reason: "wrong", value: left.value };
}

/** The first equation of a solution that does not hold, or ok. */
export function checkEquations(equations: readonly Equation[], tolerance = FLOAT_SLACK): EquationCheck {
  for (const equation of equations) {
    const check = checkEquation(equation, tolerance);
    if (!check.ok) return check;
  }
  return { ok: true };
}

/**
 * Whether some equation's stated result is `value` (within `tolerance`) and its left side is more than the
 * value with an identity applied ("45 + 0", "1 * 45"): the path works the value out rather than only
 * stating it. Only identities are caught: "44 + 1 = 45" reads as a computation, and the answer may well be
 * one of the numbers worked on ("12 - 6 = 6").
 */
export function derives(equations: readonly Equation[], value: number, tolerance = 1e-6): boolean {
  const near = (number: number, target: number) => Math.abs(number - target) <= tolerance * Math.max(1, Math.abs(target));
  return equations.some((equation) => {
    const stated = evaluate(equation.rhs);
    return stated.ok && near(stated.value, value) && !isIdentityOf(equation.lhs, value, near);
  });
}

/** "v", "v + 0", "v - 0", "0 + v", "v * 1", "v / 1", "1 * v". */
function isIdentityOf(lhs: string, value: number, near: (number: number, target: number) => boolean): boolean {
  let tokens: Token[];
  try {
    tokens = tokenize(lhs);
  } catch {
    return false;
  }
  const [first, op, second] = tokens;
  if (tokens.length === 1) return first?.kind === "num" && near(first.value, value);
  if (tokens.length !== 3 || first?.kind !== "num" || op?.kind !== "op" || second?.kind !== "num") return false;
  if (near(first.value, value)) return ((op.text === "+" || op.text === "-") && second.value === 0) || ((op.text === "*" || op.text === "/") && second.value === 1);
  if (near(second.value, value)) return (op.text === "+" && first.value === 0) || (op.text === "*" && first.value === 1);
  return false;
}

/**
 * What path dedup compares: the equation sequence ("eq:17+28=45;45-3=42") when the path has equations,
 * else its text with whitespace collapsed ("text:..."), so a path without equations still falls back to
 * exact-text dedup.
 */
export function pathKey(text: string, equations: readonly Equation[] = extractEquations(text)): string {
  if (equations.length > 0) return `eq:${equations.map(equationKey).join(";")}`;
  return `text:${text.trim().replace(/\s+/g, " ")}`;
}
