import type { Rng } from "./random.ts";

// Small hand-picked vocabulary: enough variety that generated instructions pass ROUGE-based
// near-duplicate filters, regular enough that every sentence reads as grammatical English.
const NOUNS = [
  "teacher", "river", "garden", "computer", "city", "student", "engineer", "library", "market", "forest",
  "company", "scientist", "kitchen", "doctor", "bridge", "museum", "farmer", "village", "robot", "mountain",
  "writer", "network", "window", "painter", "school", "planet", "customer", "island", "manager", "ocean",
  "team", "recipe", "machine", "neighbor", "report", "project", "student", "traveler", "musician", "budget",
  "volunteer", "website", "hospital", "reader", "storm", "theater", "athlete", "factory", "child", "partner",
];
const ADJECTIVES = [
  "quiet", "bright", "careful", "modern", "ancient", "simple", "curious", "gentle", "busy", "practical",
  "clever", "honest", "local", "global", "small", "large", "useful", "patient", "rapid", "steady",
  "colorful", "reliable", "friendly", "complex", "efficient", "creative", "fragile", "common", "rare", "calm",
];
const VERBS = [
  ["explain", "explains"], ["build", "builds"], ["improve", "improves"], ["describe", "describes"],
  ["protect", "protects"], ["support", "supports"], ["measure", "measures"], ["design", "designs"],
  ["organize", "organizes"], ["review", "reviews"], ["share", "shares"], ["change", "changes"],
  ["follow", "follows"], ["study", "studies"], ["connect", "connects"], ["plan", "plans"],
  ["teach", "teaches"], ["visit", "visits"], ["repair", "repairs"], ["compare", "compares"],
] as const;
const ADVERBS = ["usually", "often", "rarely", "carefully", "quickly", "always", "sometimes", "gradually", "clearly", "quietly"];
const PREPOSITIONS = ["near", "inside", "across", "behind", "around", "beyond", "beside", "under", "through", "along"];
const CONNECTIVES = ["However", "In practice", "For example", "As a result", "In general", "Meanwhile", "Because of this", "Even so"];
const TOPICS = [
  "renewable energy", "machine learning", "the water cycle", "climate change", "personal finance", "remote work",
  "healthy sleep", "urban gardening", "the French Revolution", "photosynthesis", "public transport", "data privacy",
  "volcanoes", "time management", "the immune system", "social media", "electric cars", "ocean currents",
  "ancient Rome", "recycling", "black holes", "meditation", "supply chains", "vaccines", "jazz music",
  "the stock market", "coral reefs", "3D printing", "online learning", "honeybees", "earthquakes", "nutrition",
  "cloud computing", "the printing press", "migratory birds", "inflation", "solar panels", "team leadership",
  "board games", "the human brain", "space exploration", "composting", "job interviews", "marathon training",
  "cybersecurity", "the Silk Road", "quantum computing", "desert ecosystems", "public speaking", "baking bread",
];
const AUDIENCES = ["a ten-year-old", "a new employee", "a busy parent", "a high school student", "a retired engineer", "a first-time voter", "a software developer", "a tourist"];
const FORMATS = ["table", "checklist", "short poem", "haiku", "tweet", "one-paragraph summary", "step-by-step guide", "dialogue", "limerick", "product description"];
const TONES = ["formal", "friendly", "humorous", "persuasive", "neutral", "enthusiastic"];
const LANGUAGES = ["French", "Spanish", "German", "Italian", "Portuguese", "Japanese"];
const ROLES = ["landlord", "professor", "customer support agent", "hiring manager", "city council member", "coach"];
const ACTIONS = [
  "save money on groceries", "reduce screen time", "learn a new language", "stay focused while studying",
  "prepare for a job interview", "start a vegetable garden", "write a clear email", "lower household energy use",
  "improve a running pace", "organize a small event", "keep houseplants alive", "back up important files",
];

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? "an" : "a";
}

/** One plausible English sentence. */
export function sentence(rng: Rng): string {
  const noun = () => rng.pick(NOUNS);
  const adj = () => rng.pick(ADJECTIVES);
  const verb = rng.pick(VERBS);
  switch (rng.int(0, 7)) {
    case 0:
      return `The ${adj()} ${noun()} ${verb[1]} the ${noun()} ${rng.pick(PREPOSITIONS)} the ${noun()}.`;
    case 1: {
      const a = adj();
      return `${capitalize(rng.pick(ADVERBS))}, ${article(a)} ${a} ${noun()} will ${verb[0]} ${rng.pick(TOPICS)} for the ${noun()}.`;
    }
    case 2:
      return `${rng.pick(CONNECTIVES)}, ${rng.pick(TOPICS)} ${verb[1]} how every ${noun()} works.`;
    case 3: {
      const a = adj();
      return `${capitalize(article(a))} ${a} ${noun()} can ${verb[0]} the ${noun()} when the ${noun()} is ${adj()}.`;
    }
    case 4:
      return `Many people find that ${rng.pick(TOPICS)} is more ${adj()} than it first appears.`;
    case 5:
      return `It is ${adj()} to ${verb[0]} the ${noun()} before the ${noun()} ${rng.pick(VERBS)[1]} it.`;
    case 6: {
      const a = adj();
      return `Every ${noun()} ${rng.pick(ADVERBS)} ${verb[1]} ${article(a)} ${a} idea about ${rng.pick(TOPICS)}.`;
    }
    default:
      return `One ${adj()} way to ${rng.pick(ACTIONS)} is to ${verb[0]} the ${noun()} first.`;
  }
}

/** A paragraph of `count` sentences. */
export function paragraph(rng: Rng, count: number): string {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(sentence(rng));
  return parts.join(" ");
}

/** A short answer in prose: one to three paragraphs. */
export function answer(rng: Rng): string {
  const paragraphs = rng.int(1, 3);
  const out: string[] = [];
  for (let i = 0; i < paragraphs; i++) out.push(paragraph(rng, rng.int(2, 4)));
  return out.join("\n\n");
}

/** A self-contained instruction, varied in form (imperative, with numbers, formats, audiences). */
export function instruction(rng: Rng): string {
  const topic = rng.pick(TOPICS);
  switch (rng.int(0, 13)) {
    case 0:
      return `Write a ${rng.pick(FORMATS)} about ${topic}.`;
    case 1:
      return `Explain ${topic} to ${rng.pick(AUDIENCES)}.`;
    case 2:
      return `List ${rng.int(3, 7)} ${rng.pick(ADJECTIVES)} ways to ${rng.pick(ACTIONS)}.`;
    case 3:
      return `Compare ${topic} and ${rng.pick(TOPICS)}, and give one similarity and one difference.`;
    case 4:
      return `Summarize the main ideas of ${topic} in ${rng.int(2, 5)} sentences.`;
    case 5:
      return `Draft a ${rng.pick(TONES)} email to a ${rng.pick(ROLES)} about ${topic}.`;
    case 6:
      return `Give ${rng.int(3, 6)} tips for someone who wants to ${rng.pick(ACTIONS)}.`;
    case 7:
      return `Translate the sentence "${sentence(rng)}" into ${rng.pick(LANGUAGES)}.`;
    case 8:
      return `Rewrite the following sentence in a ${rng.pick(TONES)} tone: "${sentence(rng)}"`;
    case 9:
      return `Create a ${rng.pick(FORMATS)} that helps ${rng.pick(AUDIENCES)} understand ${topic}.`;
    case 10:
      return `Suggest a name for a ${rng.pick(ADJECTIVES)} ${rng.pick(NOUNS)} app focused on ${topic}.`;
    case 11:
      return `Classify this statement as fact or opinion and explain why: "${sentence(rng)}"`;
    case 12:
      return `Describe a typical day of a ${rng.pick(NOUNS)} who works with ${topic}.`;
    default:
      return `Write a short quiz with ${rng.int(2, 5)} questions about ${topic}.`;
  }
}

/** A question a user might ask. */
export function question(rng: Rng): string {
  const topic = rng.pick(TOPICS);
  switch (rng.int(0, 9)) {
    case 0:
      return `What is the difference between ${topic} and ${rng.pick(TOPICS)}?`;
    case 1:
      return `How does ${topic} affect the daily life of a ${rng.pick(NOUNS)}?`;
    case 2:
      return `Why is ${topic} important for ${rng.pick(AUDIENCES)}?`;
    case 3:
      return `What are the main causes of ${topic}?`;
    case 4:
      return `How can I ${rng.pick(ACTIONS)} without spending much time?`;
    case 5:
      return `Which ${rng.pick(ADJECTIVES)} habits help people ${rng.pick(ACTIONS)}?`;
    case 6:
      return `Can you explain how ${topic} works in simple terms?`;
    case 7:
      return `When should a ${rng.pick(ROLES)} think about ${topic}?`;
    case 8:
      return `What would happen to a ${rng.pick(NOUNS)} if ${topic} disappeared tomorrow?`;
    default:
      return `Who benefits most from ${topic}, and why?`;
  }
}

/** A short noun phrase (names, titles, labels). */
export function phrase(rng: Rng): string {
  return capitalize(`${rng.pick(ADJECTIVES)} ${rng.pick(NOUNS)}`);
}

export function topic(rng: Rng): string {
  return rng.pick(TOPICS);
}

export function word(rng: Rng): string {
  return rng.pick(rng.chance(0.5) ? NOUNS : ADJECTIVES);
}

const LIST_REQUEST = /\b(list|generate|write|create|give|propose|produce|suggest|brainstorm|come up with)\b[\s\S]{0,120}?\b(instructions?|questions?|tasks?|prompts?)\b/i;

/** When a prompt asks for a list of instructions or questions: which kind, and how many (if it says). */
export function listRequest(text: string): { kind: "instructions" | "questions"; count: number | undefined } | undefined {
  const match = LIST_REQUEST.exec(text);
  if (!match) return undefined;
  const kind = /^questions?$/i.test(match[2]!) ? "questions" : "instructions";
  const number = /\b(\d{1,2})\b/.exec(match[0]) ?? /\b(\d{1,2})\s+(?:new\s+|more\s+|diverse\s+|different\s+)*(?:instructions?|questions?|tasks?|prompts?)\b/i.exec(text);
  const count = number ? Number(number[1]) : undefined;
  return { kind, count: count && count > 0 && count <= 50 ? count : undefined };
}

/** A numbered list ("1. ...") of varied instructions or questions. */
export function numberedList(rng: Rng, kind: "instructions" | "questions", count: number): string {
  const lines: string[] = [];
  for (let i = 1; i <= count; i++) lines.push(`${i}. ${kind === "questions" ? question(rng) : instruction(rng)}`);
  return lines.join("\n");
}
