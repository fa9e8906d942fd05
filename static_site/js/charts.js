// Small SVG charts drawn with our own DOM code (the page loads nothing from anyone else and
// runs under a strict Content-Security-Policy: no inline styles, so colours come from classes
// in app.css and sizes from SVG attributes).

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function percent(value, digits = 0) {
  return value === null || value === undefined ? "n/a" : `${(100 * value).toFixed(digits)}%`;
}

// Horizontal bars with 95% interval whiskers. rows: [{label, value, low, high}] on 0..1
// (null values are shown as "no data"); the chart is an image whose label says what it shows,
// and every number is also written beside its bar.
export function intervalBars(rows, { title, valueText = (r) => percent(r.value, 1) } = {}) {
  const labelWidth = 190;
  const barWidth = 380;
  const rowHeight = 24;
  const height = rows.length * rowHeight + 30;
  const width = labelWidth + barWidth + 150;
  const chart = svg("svg", { role: "img", "aria-label": title, width, height,
    viewBox: `0 0 ${width} ${height}`, class: "chart" });
  chart.append(svg("title", {}, title));
  const x = (v) => labelWidth + barWidth * Math.max(0, Math.min(1, v));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg("line", { x1: x(tick), x2: x(tick), y1: 4, y2: height - 22, class: "chart-grid" }));
    chart.append(svg("text", { x: x(tick), y: height - 6, "text-anchor": "middle", class: "chart-text" }, percent(tick)));
  }
  rows.forEach((row, i) => {
    const y = 6 + i * rowHeight;
    const name = row.label.length > 28 ? `${row.label.slice(0, 27)}…` : row.label;
    chart.append(svg("text", { x: 0, y: y + 14, class: "chart-text" }, name));
    if (row.value === null || row.value === undefined) {
      chart.append(svg("text", { x: labelWidth + 4, y: y + 14, class: "chart-text muted-text" }, "no data"));
      return;
    }
    chart.append(svg("rect", { x: labelWidth, y: y + 3, width: Math.max(1, x(row.value) - labelWidth), height: 14, class: "chart-bar" }));
    if (row.low !== null && row.low !== undefined && row.high !== null && row.high !== undefined) {
      chart.append(svg("line", { x1: x(row.low), x2: x(row.high), y1: y + 10, y2: y + 10, class: "chart-ci" }));
      for (const end of [row.low, row.high]) {
        chart.append(svg("line", { x1: x(end), x2: x(end), y1: y + 5, y2: y + 15, class: "chart-ci" }));
      }
    }
    chart.append(svg("text", { x: labelWidth + barWidth + 8, y: y + 14, class: "chart-text" }, valueText(row)));
  });
  return chart;
}

// A small progress bar: done of total, with the figures as its accessible name.
export function progressBar(done, total, label) {
  const width = 140;
  const share = total ? done / total : 0;
  const bar = svg("svg", { role: "img", "aria-label": `${label}: ${done} of ${total} done`, width,
    height: 14, viewBox: `0 0 ${width} 14`, class: "progress-chart" });
  bar.append(svg("rect", { x: 0, y: 2, width, height: 10, class: "progress-track" }));
  bar.append(svg("rect", { x: 0, y: 2, width: Math.round(width * share), height: 10, class: "progress-fill" }));
  return bar;
}
