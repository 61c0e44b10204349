import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";

/** Debian's chromium (.ci/run installs it); RXSYNTH_CHROMIUM points elsewhere. */
export const CHROMIUM = process.env.RXSYNTH_CHROMIUM ?? "/usr/bin/chromium";

/** Starts headless Chromium, or fails with the line that says how to get it: these tests never skip. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the report tests need Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set RXSYNTH_CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

export interface OpenedReport {
  readonly page: Page;
  /** Console errors and uncaught exceptions of the page, in order. */
  readonly errors: string[];
  /** Every request other than the report file itself (all refused). */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Opens a report file offline: any request but the file itself is recorded and aborted. */
export async function openReport(browser: Browser, file: string): Promise<OpenedReport> {
  const url = pathToFileURL(file).href;
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  await page.route("**/*", async (route) => {
    if (route.request().url() === url) return route.continue();
    requests.push(route.request().url());
    return route.abort();
  });
  await page.goto(url, { waitUntil: "load" });
  return { page, errors, requests, close: () => page.close() };
}

/**
 * SVG marks (path and rect elements) each chart container draws beyond its frame, by `name:arg`: the
 * frame (axes, legend, grid) is counted by drawing the same chart with every series emptied, off screen.
 */
export async function chartMarks(page: Page): Promise<Record<string, { marks: number; frame: number }>> {
  const entries = await page.evaluate(() => {
    type Chart = { getOption(): { series?: Record<string, unknown>[] } & Record<string, unknown>; dispose(): void; setOption(o: unknown): void };
    const lib = (window as unknown as { echarts: { getInstanceByDom(el: Element): Chart | undefined; init(el: Element, theme: null, o: unknown): Chart } }).echarts;
    const count = (el: Element) => el.querySelectorAll("svg path, svg rect").length;
    return [...document.querySelectorAll(".chart[data-chart]")].map((el) => {
      const arg = el.getAttribute("data-arg");
      const name = `${el.getAttribute("data-chart")}${arg === null ? "" : `:${arg}`}`;
      const chart = lib.getInstanceByDom(el);
      if (!chart) return [name, { marks: 0, frame: 0 }] as const;
      const option = chart.getOption();
      const empty = { ...option, series: (option.series ?? []).map((series) => ({ ...series, data: [], links: [], markLine: undefined })) };
      const probe = document.createElement("div");
      probe.style.cssText = `position:absolute;left:-5000px;width:${el.clientWidth}px;height:${el.clientHeight}px`;
      document.body.appendChild(probe);
      const frameChart = lib.init(probe, null, { renderer: "svg" });
      frameChart.setOption(empty);
      const frame = count(probe);
      frameChart.dispose();
      probe.remove();
      return [name, { marks: count(el), frame }] as const;
    });
  });
  return Object.fromEntries(entries);
}

/** The rows of the sample browser as shown: kind, reason and operator of each. */
export async function shownSamples(page: Page): Promise<{ kind: string; reason: string; operator: string }[]> {
  return page.$$eval("#sample-list .sample", (elements) =>
    elements.map((el) => ({ kind: el.getAttribute("data-kind") ?? "", reason: el.getAttribute("data-reason") ?? "", operator: el.getAttribute("data-operator") ?? "" })),
  );
}
