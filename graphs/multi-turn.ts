// Multi-turn conversations by self-chat: a simulated user and an assistant, each its own LLM call, talk for
// `turns` exchanges starting from a seed request. Follows UltraChat (Ding et al. 2023: one model plays the
// user, asking follow-ups, another the assistant) and Baize (Xu et al. 2023: self-chat from seed questions).
//
// Input: the opening user message of each conversation from `openersPath` (`prompt`, or `instruction` with
// its input; default: the 175 Self-Instruct seed tasks, human-written).
// Provenance: the first assistant reply makes the conversation a new sample (assistant_1, depth 1); every
// later turn is a step on it (user_2, assistant_2, ..., each with model and tokens), so a conversation is one
// generation away from its human opener whatever its length.
//
// Output columns (data): messages (JSON list of OpenAI-style {role, content}, starting with the system
// message when `system` is set), turns (user/assistant exchanges), words (total words of all turns).
// Scores: turns, user_words (mean words per user turn), assistant_words (mean per assistant turn).
// Drop reasons: a turn's refusal / empty / truncated / llm_error (the operator name says which turn),
// short_turn (a turn under minTurnWords words; value: its words), no_prompt.
//
//   rxsynth run graphs/multi-turn.ts --set turns=4 --set count=100 --out out/chats
//   rxsynth export out/chats --format sharegpt
import { ConfigError, defineAsyncMap, defineFilter, defineGraph, defineMap, drop, openSource, resolveDataPath, type Operator, type Sample } from "../src/index.ts";
import type { ChatMessage } from "../src/llm/index.ts";
import { generate } from "../operators/generate/generate.ts";
import { asker } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, wordCount } from "./lib/llm-steps.ts";

export const defaults = {
  /** Conversations to make (the first `count` openers). */
  count: 50,
  openersPath: "builtin:self_instruct_seed_tasks.jsonl",
  /** User/assistant exchanges per conversation. */
  turns: 3,
  /** System message for the assistant, kept as the conversation's first message; "" for none. */
  system: "",
  /** A turn shorter than this many words fails the conversation (short_turn). */
  minTurnWords: 3,
  /** Temperature of the simulated user (higher: more varied follow-ups). */
  userTemperature: 1.0,
  assistantTemperature: 0.7,
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  seed: 42,
};

export type Role = "system" | "user" | "assistant";
export interface Message {
  readonly role: Role;
  readonly content: string;
}

/** The opening request of a seed record: `prompt`, or `instruction` with its input (a seed task's first instance). */
export function openerText(data: Record<string, unknown>): string {
  if (typeof data.prompt === "string" && data.prompt.trim()) return data.prompt.trim();
  if (typeof data.instruction !== "string" || !data.instruction.trim()) return "";
  const instances = Array.isArray(data.instances) ? (data.instances as { input?: unknown }[]) : [];
  const input = typeof data.input === "string" ? data.input : typeof instances[0]?.input === "string" ? instances[0].input : "";
  return input.trim() ? `${data.instruction.trim()}\n\n${input.trim()}` : data.instruction.trim();
}

/** The conversation as the user simulator reads it. */
function transcript(messages: readonly Message[]): string {
  return messages
    .filter((m) => m.role !== "system")
    .map((m) => `${m.role === "user" ? "User" : "Assistant"}: ${m.content}`)
    .join("\n\n");
}

/** Models playing the user like to label their line; the label is not part of what the user says. */
export function cleanUserTurn(text: string): string {
  return text.trim().replace(/^\**\s*(?:user|human)\s*\**\s*:\s*\**\s*/i, "").replace(/^"([\s\S]*)"$/, "$1").trim();
}

const USER_SIMULATOR =
  "You play the human user in a conversation with an AI assistant. Stay in character: you are the person who " +
  "made the first request, with their goal and level of knowledge. Each time, you say what that user would say " +
  "next: a follow-up that goes deeper, asks about something unclear, pushes back on a weak point, or adds a " +
  "constraint. Never answer as the assistant, never thank it at length, and never end the conversation.";

export default defineGraph({
  name: "multi-turn",
  description: "Self-chat (UltraChat, Baize): a simulated user and an assistant talk for k turns from seed requests -> OpenAI messages",
  defaults,
  async build(options, env) {
    if (!Number.isInteger(options.turns) || options.turns < 1) throw new ConfigError(`multi-turn: turns must be an integer >= 1, got ${options.turns}`);
    const source = firstRecords(await openSource(resolveDataPath(options.openersPath), { name: "openers" }), options.count);
    const endpoint = await openEndpoint(env, { seed: options.seed, price: options.price });
    const { llm } = endpoint;
    const system: Message[] = options.system ? [{ role: "system", content: options.system }] : [];
    const minWords = options.minTurnWords;
    const tooShort = (text: string) => wordCount(text) < minWords;
    const conversation = (sample: Sample) => sample.data.messages as Message[];

    const operators: Operator[] = [
      defineFilter({
        name: "openers",
        test: (sample) => (openerText(sample.data) ? true : drop("no_prompt", { message: "the record has no prompt or instruction text" })),
      }),
      generate({
        llm,
        name: "assistant_1",
        temperature: options.assistantTemperature,
        seed: options.seed,
        prompt: (sample) => [...system, { role: "user", content: openerText(sample.data) }],
        parse: (text) => {
          const reply = text.trim();
          return tooShort(reply) ? drop("short_turn", { value: wordCount(reply), threshold: minWords }) : reply;
        },
        write: (reply, sample) => ({ messages: [...system, { role: "user", content: openerText(sample.data) }, { role: "assistant", content: reply }] }),
      }),
    ];

    const userAsker = asker({ llm, temperature: options.userTemperature, seed: options.seed });
    const assistantAsker = asker({ llm, temperature: options.assistantTemperature, seed: options.seed });
    for (let turn = 2; turn <= options.turns; turn++) {
      operators.push(
        defineAsyncMap({
          name: `user_${turn}`,
          params: { ...userAsker.params, prompt: "user-simulator-v1", minWords },
          reads: ["messages"],
          concurrency: llm.concurrency,
          async map(sample, _state, context, signal) {
            const messages = conversation(sample);
            const prompt: ChatMessage[] = [
              { role: "system", content: USER_SIMULATOR },
              { role: "user", content: `The conversation so far:\n\n${transcript(messages)}\n\nReply with the user's next message only.` },
            ];
            const answer = await userAsker.ask(prompt, context, signal);
            if (!answer.ok) return answer.verdict;
            const said = cleanUserTurn(answer.text);
            if (tooShort(said)) return drop("short_turn", { value: wordCount(said), threshold: minWords, raw: answer.text, message: `user turn ${turn}` });
            return { data: { ...sample.data, messages: [...messages, { role: "user", content: said }] }, step: { ...answer.step, note: `turn ${turn}` } };
          },
        }),
        defineAsyncMap({
          name: `assistant_${turn}`,
          params: { ...assistantAsker.params, system: options.system, minWords },
          reads: ["messages"],
          concurrency: llm.concurrency,
          async map(sample, _state, context, signal) {
            const messages = conversation(sample);
            const answer = await assistantAsker.ask(messages, context, signal);
            if (!answer.ok) return answer.verdict;
            const reply = answer.text.trim();
            if (tooShort(reply)) return drop("short_turn", { value: wordCount(reply), threshold: minWords, raw: answer.text, message: `assistant turn ${turn}` });
            return { data: { ...sample.data, messages: [...messages, { role: "assistant", content: reply }] }, step: { ...answer.step, note: `turn ${turn}` } };
          },
        }),
      );
    }

    operators.push(
      defineMap({
        name: "stats",
        reads: ["messages"],
        writes: ["turns", "words"],
        map(sample) {
          const messages = conversation(sample);
          const words = (role: Role) => messages.filter((m) => m.role === role).map((m) => wordCount(m.content));
          const user = words("user");
          const assistant = words("assistant");
          const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);
          const total = [...user, ...assistant].reduce((a, b) => a + b, 0);
          return {
            data: { messages, turns: assistant.length, words: total },
            scores: { turns: assistant.length, user_words: mean(user), assistant_words: mean(assistant) },
          };
        },
      }),
    );
    return { sources: [source], operators, dispose: endpoint.dispose, chunkable: true };
  },
});
