/** A small line chart on a canvas (no chart library): axes with ticks, one line per series, a legend. */

/** One line of a chart. */
export interface Series {
  label: string;
  color: string;
  values: number[];
}

function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Draws `series` (y against index) on `canvas`, y from 0 (losses here are non-negative). */
export function drawChart(canvas: HTMLCanvasElement, title: string, xLabel: string, series: Series[]): void {
  const ctx = canvas.getContext('2d')!;
  const W = canvas.width;
  const H = canvas.height;
  const m = { left: 48, right: 12, top: 28, bottom: 36 };
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = '#222';
  ctx.font = 'bold 13px sans-serif';
  ctx.fillText(title, m.left, 18);
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const finite = series.flatMap((s) => s.values).filter(Number.isFinite);
  const yMax = finite.length ? Math.max(...finite) * 1.05 : 1;
  const x = (i: number) => m.left + (i / (n - 1)) * (W - m.left - m.right);
  const y = (v: number) => H - m.bottom - (v / yMax) * (H - m.top - m.bottom);
  ctx.strokeStyle = '#888';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(m.left, m.top);
  ctx.lineTo(m.left, H - m.bottom);
  ctx.lineTo(W - m.right, H - m.bottom);
  ctx.stroke();
  ctx.font = '11px sans-serif';
  ctx.fillStyle = '#444';
  ctx.textAlign = 'right';
  for (const t of niceTicks(0, yMax, 5)) {
    ctx.fillText(String(t), m.left - 4, y(t) + 4);
    ctx.strokeStyle = '#eee';
    ctx.beginPath();
    ctx.moveTo(m.left + 1, y(t));
    ctx.lineTo(W - m.right, y(t));
    ctx.stroke();
  }
  ctx.textAlign = 'center';
  for (const t of niceTicks(0, n - 1, 6)) ctx.fillText(String(t), x(t), H - m.bottom + 14);
  ctx.fillText(xLabel, (m.left + W - m.right) / 2, H - 6);
  ctx.textAlign = 'left';
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.values.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
    ctx.stroke();
    ctx.fillStyle = s.color;
    ctx.fillRect(W - m.right - 190, m.top + 4 + 16 * k, 12, 3);
    ctx.fillStyle = '#222';
    ctx.fillText(s.label, W - m.right - 172, m.top + 9 + 16 * k);
  });
}
