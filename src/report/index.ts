export { writeReport, REPORT_FILE, type WriteReportOptions } from "./report-write.ts";
export { collectReportData, type ReportData, type ReportDataOptions } from "./report-data.ts";
export { serveMetrics, createRunMetrics, type MetricsServer, type MetricsServerOptions, type MetricsFeed, type RunMetrics } from "./prometheus.ts";
export { writeCard, cardText, CARD_FILE } from "./card.ts";
export { collectCardData, type CardData } from "./card-data.ts";
export { writeRunDocuments } from "./run-documents.ts";
export { TIMELINE_FILE, type TimelinePoint } from "../run/timeline.ts";
export { projectedCost } from "../run/projected-cost.ts";
