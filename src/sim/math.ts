import type { Rng } from "./random.ts";

// Worked solutions for the simplest math prompts ("Problem: What is 17 + 28?" with a "#### <answer>"
// line asked for), so graphs that verify solutions have paths to tell apart offline: the same equations
// in other words (with and without GSM8K's <<a+b=c>> annotations), another equation path, a wrong step
// before the right answer, and a wrong answer. With a hint ("The correct answer is 45") it plays a
// rationalizing model: a worked rationale, one that leans on the hint, or one that only restates it.

type Op = "+" | "-" | "*" | "/" | "%";

const PROBLEM = /Problem: What is (\d+(?:\.\d+)?)(%)? ?(\+|plus|minus|-|multiplied by|times|\*|divided by|\/|of) (\d+(?:\.\d+)?)\?/;
const HINT = /The correct answer is (-?[\d.,]+)/;
const OPS: Record<string, Op> = { "+": "+", plus: "+", "-": "-", minus: "-", "*": "*", times: "*", "multiplied by": "*", "/": "/", "divided by": "/", of: "%" };

const round = (value: number) => Math.round(value * 1e6) / 1e6;

function apply(a: number, op: Op, b: number): number {
  switch (op) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      return a / b;
    case "%":
      return (a / 100) * b;
  }
}

/** "17 + 28", or "15 / 100 * 240" for a percentage. */
function written(a: number, op: Op, b: number): string {
  return op === "%" ? `${a} / 100 * ${b}` : `${a} ${op} ${b}`;
}

/** The same result by other calculations: two steps where the direct path has one. */
function otherPath(a: number, op: Op, b: number, c: number): string {
  switch (op) {
    case "+":
      return `${a} + ${b - 1} = ${a + b - 1}, then ${a + b - 1} + 1 = ${c}.`;
    case "-":
      return `${a} - ${b - 1} = ${a - b + 1}, then ${a - b + 1} - 1 = ${c}.`;
    case "*":
      return `${a} * ${b - 1} = ${a * (b - 1)}, then ${a * (b - 1)} + ${a} = ${c}.`;
    case "/":
      return `Checking by multiplication: ${c} * ${b} = ${round(c * b)}, so ${a} / ${b} = ${c}.`;
    case "%":
      return `${b} / 100 = ${round(b / 100)}, then ${round(b / 100)} * ${a} = ${c}.`;
  }
}

function solution(rng: Rng, a: number, op: Op, b: number): string {
  const c = round(apply(a, op, b));
  const expr = written(a, op, b);
  switch (rng.int(0, 5)) {
    case 0:
      return `We compute ${expr} = ${c}.\nSo the answer is ${c}.\n#### ${c}`;
    case 1:
      return `Computing: ${expr.replace(/ /g, "")}=<<${expr.replace(/ /g, "")}=${c}>>${c}.\n#### ${c}`;
    case 2:
      return `Step by step, ${expr} = ${c}\n#### ${c}`;
    case 3:
      return `${otherPath(a, op, b, c)}\n#### ${c}`;
    case 4:
      return `${expr} = ${round(c + 1)}, and rounding that gives ${c}.\n#### ${c}`;
    default:
      return `${expr} = ${round(c + 10)}\n#### ${round(c + 10)}`;
  }
}

function rationale(rng: Rng, a: number, op: Op, b: number, hint: string): string {
  const c = round(apply(a, op, b));
  switch (rng.int(0, 3)) {
    case 0:
      return `We compute ${written(a, op, b)} = ${c}.\n#### ${c}`;
    case 1:
      return `${otherPath(a, op, b, c)}\n#### ${c}`;
    case 2:
      return `The correct answer is given as ${hint}, so that is the result.\n#### ${hint}`;
    default:
      return `#### ${hint}`;
  }
}

/** A worked solution (or rationale, with a hint) to a "What is a op b?" problem; undefined for any other prompt. */
export function mathAnswer(rng: Rng, prompt: string): string | undefined {
  if (!prompt.includes("####")) return undefined;
  const match = PROBLEM.exec(prompt);
  if (!match) return undefined;
  const a = Number(match[1]);
  const op = match[2] ? "%" : OPS[match[3]!]!;
  const b = Number(match[4]);
  const hint = HINT.exec(prompt)?.[1]?.replace(/[.,]$/, "");
  return hint !== undefined ? rationale(rng, a, op, b, hint) : solution(rng, a, op, b);
}
