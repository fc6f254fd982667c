import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { renderLossPlot, writeLossPlot, niceTicks, logTicks, formatTick } from '../plot';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngSize(png: Buffer): { width: number; height: number } {
  // IHDR is the first chunk: 8-byte signature, 4-byte length, 'IHDR', width, height (big endian).
  expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

const xs = Array.from({ length: 200 }, (_, i) => i);

describe('renderLossPlot', () => {
  it('renders a PNG of the requested size with the series names in the SVG', () => {
    const { svg, png, yScale } = renderLossPlot({
      series: [
        { name: 'train <meta>', xs, ys: xs.map((x) => 2 * Math.exp(-x / 50) + 0.1) },
        { name: 'eval', xs, ys: xs.map((x) => 2.2 * Math.exp(-x / 80) + 0.2) },
      ],
      title: 'Loss',
      xLabel: 'step',
      yLabel: 'loss',
    });
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(pngSize(png)).toEqual({ width: 800, height: 500 });
    expect(svg).toContain('train &lt;meta&gt;');
    expect(svg).toContain('>eval<');
    expect(svg).toContain('>Loss<');
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(yScale).toBe('linear');
  });

  it('breaks lines at NaN gaps and draws isolated points as dots', () => {
    const ys = xs.map((x) => (x >= 50 && x < 60) || x === 62 ? NaN : 1 + x);
    const { svg } = renderLossPlot({ series: [{ name: 's', xs, ys }], width: 400, height: 300 });
    // [0,50), [60,62) and [63,200): three polylines; [61] alone would be a dot if length 1.
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    const lonely = xs.map((x) => (x === 10 ? 5 : NaN));
    const { svg: svg2, png } = renderLossPlot({ series: [{ name: 'one', xs, ys: lonely }], width: 400, height: 300 });
    expect(svg2).toContain('<circle');
    expect(pngSize(png)).toEqual({ width: 400, height: 300 });
  });

  it('switches to a log axis for wide positive ranges, and stays linear with negatives', () => {
    const wide = renderLossPlot({ series: [{ name: 'q', xs, ys: xs.map((x) => 10 ** (2 - x / 40)) }] });
    expect(wide.yScale).toBe('log');
    expect(wide.svg).toContain('log scale');
    const neg = renderLossPlot({ series: [{ name: 'q', xs, ys: xs.map((x) => x - 100) }] });
    expect(neg.yScale).toBe('linear');
    expect(() => renderLossPlot({ series: [{ name: 'q', xs, ys: xs.map((x) => x - 100) }], yScale: 'log' })).toThrow(/positive/);
  });

  it('copes with no data at all and with mismatched lengths', () => {
    const empty = renderLossPlot({ series: [] });
    expect(empty.png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(empty.svg).toContain('no data yet');
    const allNaN = renderLossPlot({ series: [{ name: 'nan', xs: [0, 1], ys: [NaN, NaN] }] });
    expect(allNaN.svg).toContain('no data yet');
    expect(() => renderLossPlot({ series: [{ name: 'bad', xs: [0, 1], ys: [1] }] })).toThrow(/bad/);
  });
});

describe('ticks', () => {
  it('are nice and cover the range', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 3000, 7)).toEqual([0, 500, 1000, 1500, 2000, 2500, 3000]);
    const t = niceTicks(0.13, 2.47);
    expect(t[0]).toBeLessThanOrEqual(0.13);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(2.47);
    expect(niceTicks(5, 5).length).toBeGreaterThan(1);
    expect(logTicks(1e-4, 10)).toEqual([1e-4, 1e-3, 1e-2, 1e-1, 1, 10]);
    expect(logTicks(0.3, 7)).toEqual([0.1, 0.2, 0.5, 1, 2, 5, 10]);
    expect(formatTick(0.5)).toBe('0.5');
    expect(formatTick(1e-5)).toBe('1e-5');
    expect(formatTick(250000)).toBe('2.5e5');
  });
});

describe('legend', () => {
  it('sits outside the plot area (below the title), wrapping into rows, so it hides no curve', () => {
    const names = ['outer loss', 'FixedDimQuadraticFamily/mean_loss', '_MLPImageTask/mean_loss', 'another/long_series_name', 'x'];
    for (const [width, title] of [[800, 'Loss'], [400, undefined]] as const) {
      const { svg } = renderLossPlot({ series: names.map((name, k) => ({ name, xs, ys: xs.map((x) => k + x) })), width, height: 300, title });
      const area = svg.match(/<clipPath id="plot-area"><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"/)!;
      const [left, top, pw] = [Number(area[1]), Number(area[2]), Number(area[3])];
      const legend = svg.slice(svg.indexOf('<g class="legend"'));
      const lines = [...legend.matchAll(/<line x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)"/g)].map((mm) => mm.slice(1).map(Number));
      expect(lines).toHaveLength(names.length);
      for (const [x1, y1, x2] of lines) {
        expect(y1).toBeLessThan(top - 4);
        expect(x1).toBeGreaterThanOrEqual(left);
        expect(x2).toBeLessThanOrEqual(left + pw);
      }
      if (title) expect(Math.min(...lines.map((l) => l[1]))).toBeGreaterThan(28);
      // 400 px wide: the names need more than one row
      if (width === 400) expect(new Set(lines.map((l) => l[1])).size).toBeGreaterThan(1);
    }
  });
});

describe('writeLossPlot', () => {
  it('writes loss.svg and loss.png and leaves no temp files', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-plot-'));
    const { svgPath, pngPath } = await writeLossPlot(dir, [{ name: 'train', xs, ys: xs.map((x) => 1 / (1 + x)) }]);
    expect(fs.readdirSync(dir).sort()).toEqual(['loss.png', 'loss.svg']);
    expect(fs.readFileSync(svgPath, 'utf8')).toContain('train');
    expect(fs.readFileSync(pngPath).subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    // Overwrites in place.
    await writeLossPlot(dir, [{ name: 'second', xs, ys: xs }]);
    expect(fs.readFileSync(svgPath, 'utf8')).toContain('second');
    expect(fs.readdirSync(dir)).toHaveLength(2);
  });
});
