// Quickstart: synthetic customer-support Q&A records from Faker templates (no API key, no server),
// through answer-quality heuristics, a refusal filter and exact dedup, into Parquet shards.
//
//   npm start                          (= rxsynth run graphs/quickstart.ts --out ./out)
//   rxsynth run graphs/quickstart.ts --set count=20000 --out out/support
import type { Faker } from "@faker-js/faker";
import { defineGraph } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { heuristicFilter } from "../operators/filter/heuristics.ts";
import { refusalFilter } from "../operators/filter/refusal.ts";
import { templateSource } from "../operators/generate/template-records.ts";

export const defaults = {
  /** Records to generate. */
  count: 2000,
  seed: 42,
  /** Fewest words an answer may have. */
  minAnswerWords: 12,
};

const CATEGORIES = ["order_status", "refund", "shipping", "account", "product"] as const;

function question(f: Faker, category: (typeof CATEGORIES)[number], product: string, order: string): string {
  switch (category) {
    case "order_status":
      return f.helpers.arrayElement([
        `Where is my order ${order}? I ordered the ${product} last week.`,
        `Can you tell me the status of order ${order}?`,
        `My ${product} (order ${order}) still says processing. What is going on?`,
      ]);
    case "refund":
      return f.helpers.arrayElement([
        `How do I get a refund for the ${product} I bought?`,
        `The ${product} arrived damaged. Can I return it for my money back?`,
        `I was charged twice for order ${order}. How can I get refunded?`,
      ]);
    case "shipping":
      return f.helpers.arrayElement([
        `Do you ship the ${product} to ${f.location.country()}?`,
        `How long does express shipping take to ${f.location.city()}?`,
        `Can I change the delivery address for order ${order}?`,
      ]);
    case "account":
      return f.helpers.arrayElement([
        `I forgot my password and the reset email never arrives. What should I do?`,
        `How do I change the email address on my account?`,
        `Can I merge two accounts into one?`,
      ]);
    case "product":
      return f.helpers.arrayElement([
        `Is the ${product} made of ${f.commerce.productMaterial().toLowerCase()}?`,
        `Does the ${product} come with a warranty?`,
        `What is the difference between the ${product} and the ${f.commerce.productName()}?`,
      ]);
  }
}

function answer(f: Faker, category: (typeof CATEGORIES)[number], product: string, order: string, agent: string): string {
  const days = f.number.int({ min: 2, max: 10 });
  const opening = f.helpers.arrayElement(["Thanks for reaching out.", "Thank you for contacting us.", "Happy to help with that."]);
  const closing = f.helpers.arrayElement([
    `If anything else comes up, just reply to this message. ${agent}`,
    `Let us know if there is anything else we can do. Best regards, ${agent}`,
    `We are here if you need more help. ${agent} from the support team`,
  ]);
  const body: Record<(typeof CATEGORIES)[number], string> = {
    order_status: `Order ${order} left our warehouse and is with the carrier now. Tracking updates can lag by a day, and most parcels arrive within ${days} business days of dispatch. You will get an email with the tracking link as soon as the carrier scans it.`,
    refund: `You can return the ${product} within 30 days of delivery. Start the return from the Orders page, print the prepaid label, and drop the parcel at any carrier point. The refund goes back to your original payment method within ${days} business days after we receive it.`,
    shipping: `We ship to most countries, and express delivery usually takes ${days} business days. The delivery address can be changed until the order is packed; after that the carrier can redirect it for a small fee.`,
    account: `Please check your spam folder first, since reset emails are sometimes filtered. If it is not there, use the "Need help signing in" link and we will verify your identity by phone, then update the email address or reset the password for you.`,
    product: `The ${product} is covered by a ${f.helpers.arrayElement(["one", "two", "three"])} year limited warranty against manufacturing defects. The full specification, including materials and dimensions, is listed on the product page under the Details tab.`,
  };
  return `${opening} ${body[category]} ${closing}`;
}

export default defineGraph({
  name: "quickstart",
  description: "Faker customer-support Q&A records -> answer heuristics, refusal filter, exact dedup -> Parquet (no LLM)",
  defaults,
  build(options) {
    const source = templateSource({
      name: "support-qa",
      count: options.count,
      seed: options.seed,
      record(f, position) {
        const category = f.helpers.arrayElement(CATEGORIES);
        const product = f.commerce.productName();
        const order = `#${f.string.numeric(7)}`;
        const customer = f.person.firstName();
        // A few records play the failures real support logs contain, so the filters have work to do.
        const flaw = position % 50;
        const text =
          flaw === 7
            ? "I'm sorry, but as an AI language model I cannot access order information."
            : flaw === 23
              ? "Please wait."
              : answer(f, category, product, order, f.person.firstName());
        return { category, customer, product, question: question(f, category, product, order), answer: text };
      },
    });
    return {
      sources: [source],
      operators: [
        refusalFilter({ name: "refusals", fields: "answer" }),
        heuristicFilter({
          name: "answer_quality",
          fields: "answer",
          minWords: options.minAnswerWords,
          maxWords: 400,
          // Support answers are short: the long-form Gopher repetition rules would read template phrasing as spam.
          maxTopNgram: null,
          maxDupNgram: null,
        }),
        exactDedup({ name: "dedup_questions", fields: ["question", "answer"] }),
      ],
    };
  },
});
