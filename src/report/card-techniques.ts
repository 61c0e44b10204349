/**
 * What each ready graph does, in the words of the papers it follows, for the dataset card. Keyed by the
 * graph's name (a graph extended with `extendGraph` keeps it), so no graph file has to repeat it; a
 * graph not listed here is described as custom. Identifiers were checked against arXiv; papers without
 * an arXiv id link to their venue.
 */

export interface Paper {
  readonly title: string;
  /** "Wang et al." style, as the graphs' header comments cite them. */
  readonly authors: string;
  readonly year: number;
  readonly arxiv?: string;
  readonly url: string;
  /** What the graph takes from it, when it is not the main technique. */
  readonly role?: string;
}

export interface Technique {
  readonly name: string;
  /** Hugging Face tag, kebab-case. */
  readonly tag: string;
  /** Hugging Face task categories the accepted rows serve. */
  readonly taskCategories: readonly string[];
  readonly papers: readonly Paper[];
}

const arxiv = (id: string) => `https://arxiv.org/abs/${id}`;

const SELF_INSTRUCT: Technique = {
  name: "Self-Instruct",
  tag: "self-instruct",
  taskCategories: ["text-generation"],
  papers: [
    {
      title: "Self-Instruct: Aligning Language Models with Self-Generated Instructions",
      authors: "Wang et al.",
      year: 2023,
      arxiv: "2212.10560",
      url: arxiv("2212.10560"),
    },
    {
      title: "Alpaca: A Strong, Replicable Instruction-Following Model",
      authors: "Taori et al.",
      year: 2023,
      url: "https://crfm.stanford.edu/2023/03/13/alpaca.html",
      role: "the same 175 seed tasks and recipe at scale; its data was released for non-commercial use because of the terms of the model that wrote it",
    },
  ],
};

const TECHNIQUES: Readonly<Record<string, Technique>> = {
  quickstart: SELF_INSTRUCT,
  "self-instruct": SELF_INSTRUCT,
  "evol-instruct": {
    name: "Evol-Instruct",
    tag: "evol-instruct",
    taskCategories: ["text-generation"],
    papers: [
      { title: "WizardLM: Empowering Large Language Models to Follow Complex Instructions", authors: "Xu et al.", year: 2023, arxiv: "2304.12244", url: arxiv("2304.12244") },
    ],
  },
  "instruction-backtranslation": {
    name: "Instruction backtranslation (Humpback)",
    tag: "instruction-backtranslation",
    taskCategories: ["text-generation"],
    papers: [{ title: "Self-Alignment with Instruction Backtranslation", authors: "Li et al.", year: 2023, arxiv: "2308.06259", url: arxiv("2308.06259") }],
  },
  "distill-rationales": {
    name: "Explanation tuning (Orca)",
    tag: "explanation-tuning",
    taskCategories: ["text-generation"],
    papers: [
      { title: "Orca: Progressive Learning from Complex Explanation Traces of GPT-4", authors: "Mukherjee et al.", year: 2023, arxiv: "2306.02707", url: arxiv("2306.02707") },
    ],
  },
  "preference-pairs": {
    name: "AI-feedback preference pairs",
    tag: "preference-pairs",
    taskCategories: ["text-generation"],
    papers: [
      {
        title: "UltraFeedback: Boosting Language Models with Scaled AI Feedback",
        authors: "Cui et al.",
        year: 2023,
        arxiv: "2310.01377",
        url: arxiv("2310.01377"),
        role: "the default judge: completions from sampled models under sampled principles, rated 1-5 on four aspects, binarised best mean vs a lower one",
      },
      {
        title: "Starling-7B: Increasing LLM Helpfulness & Harmlessness with RLAIF (Nectar)",
        authors: "Zhu et al.",
        year: 2023,
        url: "https://starling.cs.berkeley.edu/",
        role: "the `judge: \"pairwise\"` option: pairwise comparisons asked in both orders against position bias",
      },
      {
        title: "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
        authors: "Rafailov et al.",
        year: 2023,
        arxiv: "2305.18290",
        url: arxiv("2305.18290"),
        role: "the {prompt, chosen, rejected} record the rows are shaped for",
      },
    ],
  },
  "code-exec": {
    name: "Code with execution feedback",
    tag: "execution-feedback",
    taskCategories: ["text-generation"],
    papers: [
      { title: "Teaching Large Language Models to Self-Debug", authors: "Chen et al.", year: 2023, arxiv: "2304.05128", url: arxiv("2304.05128") },
      {
        title: "Code Llama: Open Foundation Models for Code",
        authors: "Rozière et al.",
        year: 2023,
        arxiv: "2308.12950",
        url: arxiv("2308.12950"),
        role: "solutions kept only when their unit tests pass",
      },
    ],
  },
  "math-verified": {
    name: "Rejection sampling with verified answers",
    tag: "rejection-sampling",
    taskCategories: ["text-generation", "question-answering"],
    papers: [
      {
        title: "Scaling Relationship on Learning Mathematical Reasoning with Large Language Models",
        authors: "Yuan et al.",
        year: 2023,
        arxiv: "2308.01825",
        url: arxiv("2308.01825"),
      },
      { title: "STaR: Bootstrapping Reasoning With Reasoning", authors: "Zelikman et al.", year: 2022, arxiv: "2203.14465", url: arxiv("2203.14465") },
      { title: "Let's Verify Step by Step", authors: "Lightman et al.", year: 2023, arxiv: "2305.20050", url: arxiv("2305.20050"), role: "outcome supervision" },
    ],
  },
  "multi-turn": {
    name: "Self-chat conversations",
    tag: "self-chat",
    taskCategories: ["text-generation"],
    papers: [
      {
        title: "Enhancing Chat Language Models by Scaling High-quality Instructional Conversations (UltraChat)",
        authors: "Ding et al.",
        year: 2023,
        arxiv: "2305.14233",
        url: arxiv("2305.14233"),
      },
      { title: "Baize: An Open-Source Chat Model with Parameter-Efficient Tuning on Self-Chat Data", authors: "Xu et al.", year: 2023, arxiv: "2304.01196", url: arxiv("2304.01196") },
    ],
  },
  mix: {
    name: "Human/synthetic mix with a depth cap",
    tag: "data-mixing",
    taskCategories: ["text-generation"],
    papers: [
      {
        title: "AI models collapse when trained on recursively generated data",
        authors: "Shumailov et al.",
        year: 2024,
        url: "https://doi.org/10.1038/s41586-024-07566-y",
      },
      {
        title: "Is Model Collapse Inevitable? Breaking the Curse of Recursion by Accumulating Real and Synthetic Data",
        authors: "Gerstgrasser et al.",
        year: 2024,
        arxiv: "2404.01413",
        url: arxiv("2404.01413"),
      },
    ],
  },
  curate: {
    name: "Corpus curation (quality rules, exact and MinHash dedup)",
    tag: "curation",
    taskCategories: ["text-generation"],
    papers: [
      { title: "The FineWeb Datasets: Decanting the Web for the Finest Text Data at Scale", authors: "Penedo et al.", year: 2024, arxiv: "2406.17557", url: arxiv("2406.17557") },
      {
        title: "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
        authors: "Rae et al.",
        year: 2021,
        arxiv: "2112.11446",
        url: arxiv("2112.11446"),
        role: "quality and repetition rules",
      },
      {
        title: "On the resemblance and containment of documents",
        authors: "Broder",
        year: 1997,
        url: "https://doi.org/10.1109/SEQUEN.1997.666900",
        role: "MinHash",
      },
    ],
  },
  augment: {
    name: "Label-preserving data augmentation",
    tag: "data-augmentation",
    taskCategories: ["text-classification"],
    papers: [
      { title: "Not Enough Data? Deep Learning to the Rescue! (LAMBADA)", authors: "Anaby-Tavor et al.", year: 2020, arxiv: "1911.03118", url: arxiv("1911.03118") },
      { title: "Data Augmentation using Pre-trained Transformer Models", authors: "Kumar et al.", year: 2020, arxiv: "2003.02245", url: arxiv("2003.02245") },
    ],
  },
  "back-translation": {
    name: "Back-translation with a round-trip filter",
    tag: "back-translation",
    taskCategories: ["translation"],
    papers: [
      { title: "Improving Neural Machine Translation Models with Monolingual Data", authors: "Sennrich et al.", year: 2016, arxiv: "1511.06709", url: arxiv("1511.06709") },
      {
        title: "chrF: character n-gram F-score for automatic MT evaluation",
        authors: "Popović",
        year: 2015,
        url: "https://aclanthology.org/W15-3049/",
        role: "the round-trip score",
      },
    ],
  },
  "qa-from-documents": {
    name: "Document-grounded question answering",
    tag: "document-qa",
    taskCategories: ["question-answering"],
    papers: [{ title: "Synthetic QA Corpora Generation with Roundtrip Consistency", authors: "Alberti et al.", year: 2019, arxiv: "1906.05416", url: arxiv("1906.05416") }],
  },
  "template-records": {
    name: "Template records (seeded Faker templates)",
    tag: "template-records",
    taskCategories: ["text-generation"],
    papers: [],
  },
};

/** The technique a graph follows, or undefined for a graph that is not one of the ready ones. */
export function techniqueOf(graph: string): Technique | undefined {
  return TECHNIQUES[graph];
}

/** Names of the graphs the card knows, for tests that check every ready graph is covered. */
export function knownTechniqueGraphs(): string[] {
  return Object.keys(TECHNIQUES).sort();
}
