// Summaries the benches print: the median of a sample, and a percentile of a sorted one. Pure.

/** The median (the upper one of an even count). */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The p-th percentile (nearest rank) of an ascending `sorted`; NaN when it is empty. */
export const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
