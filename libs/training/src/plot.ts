/**
 * Loss curves as a hand-built SVG line chart, rasterised to PNG with resvg (system fonts).
 * Non-finite points break a line into segments (NaN gaps); the y axis switches to a log scale
 * when every value is positive and they span more than `logThreshold` (default 1000x).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Resvg } from '@resvg/resvg-js';
import { atomicWriteFile } from '@lopt/core';

/** One line of a plot: a name and its x and y values (non-finite y values leave gaps). */
export interface Series {
  name: string;
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
}

/** What {@link renderLossPlot} draws: the series, title, axis labels, size in pixels, and the y scale. */
export interface PlotOptions {
  series: Series[];
  title?: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** 'auto' (default) picks log when all values are positive and span > logThreshold. */
  yScale?: 'auto' | 'linear' | 'log';
  logThreshold?: number;
}

/** A rendered plot: SVG text, PNG bytes, and the y scale chosen. */
export interface RenderedPlot {
  svg: string;
  png: Buffer;
  /** The y scale that was used. */
  yScale: 'linear' | 'log';
}

/** Tableau 10, the matplotlib default cycle. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" linear ticks (1, 2, 5 x 10^k) covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return [];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  if (lo > hi) [lo, hi] = [hi, lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const start = Math.floor(lo / step + 1e-9) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start, i = 0; v <= end + step * 1e-9 && i < 1000; i++, v = start + i * step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

/** Log-scale ticks: powers of ten covering [lo, hi] (lo > 0), with 2 and 5 added when the range is short. */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  const b = Math.ceil(Math.log10(hi) - 1e-9);
  const ticks: number[] = [];
  const decades = Math.max(1, b - a);
  const stride = Math.ceil(decades / 8);
  for (let e = a; e <= b; e += stride) {
    ticks.push(Number((10 ** e).toPrecision(12)));
    if (decades <= 2 && e < b) ticks.push(Number((2 * 10 ** e).toPrecision(12)), Number((5 * 10 ** e).toPrecision(12)));
  }
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((10 ** (ticks.length ? Math.log10(ticks[ticks.length - 1]) + stride : b)).toPrecision(12)));
  return ticks;
}

/** A tick label: up to 6 significant digits, exponent form (`1e-4`, `2.5e6`) outside [1e-3, 1e5). */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const [m, e] = v.toExponential(2).split('e');
    return `${String(Number(m))}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(6)));
}

const LEGEND_SWATCH = 22;
const LEGEND_GAP = 18;
/** Approximate width of a 12 px DejaVu Sans character (resvg has no text metrics to ask). */
const LEGEND_CHAR_W = 7.2;

interface LegendRow {
  items: Array<{ index: number; width: number }>;
  width: number;
}

/** Greedy left-to-right rows of legend items no wider than `maxWidth` (an item wider than that gets a row of its own). */
export function layoutLegend(names: string[], maxWidth: number): LegendRow[] {
  const rows: LegendRow[] = [];
  names.forEach((name, index) => {
    const width = LEGEND_SWATCH + 6 + name.length * LEGEND_CHAR_W;
    const row = rows[rows.length - 1];
    if (row && row.width + LEGEND_GAP + width <= maxWidth) {
      row.items.push({ index, width });
      row.width += LEGEND_GAP + width;
    } else {
      rows.push({ items: [{ index, width }], width });
    }
  });
  return rows;
}

/** Renders the chart; see `PlotOptions`. */
export function renderLossPlot(opts: PlotOptions): RenderedPlot {
  const W = opts.width ?? 800;
  const H = opts.height ?? 500;
  const series = opts.series;
  const m = { left: 78, right: 24, top: 0, bottom: opts.xLabel ? 58 : 40 };
  const pw = W - m.left - m.right;
  // Legend outside the plot area, between the title and the plot: rows of "line + name" items,
  // each row centred over the plot, wrapping when a row would be wider than the plot.
  const legendRowH = 18;
  const legendRows = layoutLegend(series.map((s) => s.name), pw);
  const titleY = 28;
  const legendTop = opts.title ? 40 : 8;
  m.top = legendRows.length ? legendTop + legendRows.length * legendRowH + 8 : opts.title ? 44 : 20;
  const ph = H - m.top - m.bottom;

  // Data ranges over finite points only.
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  let allPositive = true;
  for (const s of series) {
    if (s.xs.length !== s.ys.length) throw new Error(`series '${s.name}': xs has ${s.xs.length} points, ys ${s.ys.length}`);
    for (let i = 0; i < s.xs.length; i++) {
      const x = s.xs[i], y = s.ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < xmin) xmin = x;
      if (x > xmax) xmax = x;
      if (y < ymin) ymin = y;
      if (y > ymax) ymax = y;
      if (y <= 0) allPositive = false;
    }
  }
  const hasData = Number.isFinite(xmin);
  if (!hasData) {
    xmin = 0; xmax = 1; ymin = 0; ymax = 1;
  }
  const threshold = opts.logThreshold ?? 1000;
  const yScale: 'linear' | 'log' =
    opts.yScale === 'log' || (opts.yScale !== 'linear' && hasData && allPositive && ymax / ymin > threshold) ? 'log' : 'linear';
  if (yScale === 'log' && !(hasData && allPositive)) {
    throw new Error("yScale 'log' needs every finite y value to be positive");
  }

  const xt = niceTicks(xmin, xmax, 7);
  const x0 = Math.min(xt[0], xmin), x1 = Math.max(xt[xt.length - 1], xmax);
  let yt: number[], y0: number, y1: number;
  let ty: (v: number) => number;
  if (yScale === 'log') {
    yt = logTicks(ymin, ymax);
    y0 = Math.log10(Math.min(yt[0], ymin));
    y1 = Math.log10(Math.max(yt[yt.length - 1], ymax));
    ty = (v) => m.top + ph - ((Math.log10(v) - y0) / (y1 - y0 || 1)) * ph;
  } else {
    yt = niceTicks(ymin, ymax, 6);
    y0 = Math.min(yt[0], ymin);
    y1 = Math.max(yt[yt.length - 1], ymax);
    ty = (v) => m.top + ph - ((v - y0) / (y1 - y0 || 1)) * ph;
  }
  const tx = (v: number) => m.left + ((v - x0) / (x1 - x0 || 1)) * pw;
  const r = (v: number) => Math.round(v * 100) / 100;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
  );
  if (opts.title) {
    out.push(`<text x="${r(m.left + pw / 2)}" y="${titleY}" text-anchor="middle" font-size="17" font-weight="bold" fill="#222">${esc(opts.title)}</text>`);
  }
  // Grid and ticks.
  out.push('<g class="grid" stroke="#e6e6e6" stroke-width="1">');
  for (const v of xt) out.push(`<line x1="${r(tx(v))}" y1="${m.top}" x2="${r(tx(v))}" y2="${m.top + ph}"/>`);
  for (const v of yt) out.push(`<line x1="${m.left}" y1="${r(ty(v))}" x2="${m.left + pw}" y2="${r(ty(v))}"/>`);
  out.push('</g>');
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#444" stroke-width="1"/>`);
  out.push('<g class="ticks" font-size="12" fill="#333">');
  for (const v of xt) {
    out.push(`<line x1="${r(tx(v))}" y1="${m.top + ph}" x2="${r(tx(v))}" y2="${m.top + ph + 5}" stroke="#444"/>`);
    out.push(`<text x="${r(tx(v))}" y="${m.top + ph + 19}" text-anchor="middle">${esc(formatTick(v))}</text>`);
  }
  for (const v of yt) {
    out.push(`<line x1="${m.left - 5}" y1="${r(ty(v))}" x2="${m.left}" y2="${r(ty(v))}" stroke="#444"/>`);
    out.push(`<text x="${m.left - 8}" y="${r(ty(v) + 4)}" text-anchor="end">${esc(formatTick(v))}</text>`);
  }
  out.push('</g>');
  if (opts.xLabel) {
    out.push(`<text x="${r(m.left + pw / 2)}" y="${H - 14}" text-anchor="middle" font-size="14" fill="#222">${esc(opts.xLabel)}</text>`);
  }
  const yLabel = opts.yLabel ? opts.yLabel + (yScale === 'log' ? ' (log scale)' : '') : yScale === 'log' ? 'log scale' : '';
  if (yLabel) {
    const cy = r(m.top + ph / 2);
    out.push(`<text x="18" y="${cy}" transform="rotate(-90 18 ${cy})" text-anchor="middle" font-size="14" fill="#222">${esc(yLabel)}</text>`);
  }

  // Lines, clipped to the plot area.
  out.push(`<defs><clipPath id="plot-area"><rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}"/></clipPath></defs>`);
  out.push('<g clip-path="url(#plot-area)" fill="none" stroke-width="2" stroke-linejoin="round" stroke-linecap="round">');
  series.forEach((s, k) => {
    const color = PALETTE[k % PALETTE.length];
    const segments: Array<Array<[number, number]>> = [];
    let cur: Array<[number, number]> = [];
    for (let i = 0; i < s.xs.length; i++) {
      const x = s.xs[i], y = s.ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        if (cur.length) segments.push(cur);
        cur = [];
        continue;
      }
      cur.push([r(tx(x)), r(ty(y))]);
    }
    if (cur.length) segments.push(cur);
    for (const seg of segments) {
      if (seg.length === 1) {
        out.push(`<circle cx="${seg[0][0]}" cy="${seg[0][1]}" r="2.5" fill="${color}" stroke="none"/>`);
      } else {
        out.push(`<polyline stroke="${color}" points="${seg.map((p) => p.join(',')).join(' ')}"/>`);
      }
    }
  });
  out.push('</g>');
  if (!hasData) {
    out.push(`<text x="${r(m.left + pw / 2)}" y="${r(m.top + ph / 2)}" text-anchor="middle" font-size="16" fill="#888">no data yet</text>`);
  }

  // Legend (laid out above, outside the plot area, so it never hides a curve).
  if (legendRows.length) {
    out.push(`<g class="legend" font-size="12" fill="#222">`);
    legendRows.forEach((row, ri) => {
      const yy = legendTop + ri * legendRowH + legendRowH / 2;
      let x = m.left + (pw - row.width) / 2;
      for (const item of row.items) {
        const color = PALETTE[item.index % PALETTE.length];
        out.push(`<line x1="${r(x)}" y1="${yy}" x2="${r(x + LEGEND_SWATCH)}" y2="${yy}" stroke="${color}" stroke-width="2.5"/>`);
        out.push(`<text x="${r(x + LEGEND_SWATCH + 6)}" y="${yy + 4}">${esc(series[item.index].name)}</text>`);
        x += item.width + LEGEND_GAP;
      }
    });
    out.push('</g>');
  }
  out.push('</svg>');
  const svg = out.join('\n');
  const png = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    background: '#ffffff',
  })
    .render()
    .asPng();
  return { svg, png, yScale };
}

/** Writes `loss.svg` and `loss.png` into `dir` atomically; returns their paths. */
export async function writeLossPlot(
  dir: string,
  series: Series[],
  options: Omit<PlotOptions, 'series'> = {},
): Promise<{ svgPath: string; pngPath: string }> {
  const { svg, png } = renderLossPlot({ title: 'Meta-training loss', xLabel: 'outer step', yLabel: 'loss', ...options, series });
  const svgPath = path.join(dir, 'loss.svg');
  const pngPath = path.join(dir, 'loss.png');
  await fs.promises.mkdir(dir, { recursive: true });
  await atomicWriteFile(svgPath, svg);
  await atomicWriteFile(pngPath, png);
  return { svgPath, pngPath };
}
