// SVG charts drawn in the page from numbers the admin API returned: no library, no request
// to another origin. Labels are set as text nodes, never as markup.

const SVG = "http://www.w3.org/2000/svg";

function node(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    element.setAttribute(name, String(value));
  }
  if (text !== undefined) element.textContent = text;
  return element;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// Vertical bars, one per point ({label, value}), with a y axis in `format`.
export function columnChart(points, { title, format = String, height = 220 }) {
  const width = Math.max(480, points.length * 28 + 80);
  const left = 64, bottom = 40, top = 12;
  const max = niceMax(Math.max(0, ...points.map((point) => point.value)));
  const plot = height - bottom - top;
  const svg = node("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title,
  });
  svg.append(node("title", {}, title));
  for (let tick = 0; tick <= 4; tick++) {
    const y = top + plot - (plot * tick) / 4;
    svg.append(node("line", { x1: left, x2: width - 8, y1: y, y2: y, stroke: "#d0d7de" }));
    svg.append(node("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, format((max * tick) / 4)));
  }
  const slot = (width - left - 8) / Math.max(1, points.length);
  points.forEach((point, index) => {
    const barHeight = (plot * point.value) / max;
    const x = left + index * slot + slot * 0.15;
    const bar = node("rect", {
      x, y: top + plot - barHeight, width: slot * 0.7, height: Math.max(0, barHeight), class: "series",
    });
    bar.append(node("title", {}, `${point.label}: ${format(point.value)}`));
    svg.append(bar);
    if (points.length <= 16 || index % Math.ceil(points.length / 16) === 0) {
      svg.append(node("text", { x: x + slot * 0.35, y: height - bottom + 16, "text-anchor": "middle" },
        point.label.length > 10 ? point.label.slice(5) : point.label));
    }
  });
  return svg;
}

// Horizontal bars, one per point ({label, value}), largest first.
export function barChart(points, { title, format = String }) {
  const sorted = [...points].sort((a, b) => b.value - a.value).slice(0, 12);
  const row = 26, left = 200, width = 720;
  const height = Math.max(60, sorted.length * row + 20);
  const max = niceMax(Math.max(0, ...sorted.map((point) => point.value)));
  const svg = node("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title,
  });
  svg.append(node("title", {}, title));
  sorted.forEach((point, index) => {
    const y = 10 + index * row;
    const label = point.label.length > 28 ? `${point.label.slice(0, 27)}…` : point.label;
    svg.append(node("text", { x: left - 8, y: y + 15, "text-anchor": "end" }, label));
    const barWidth = ((width - left - 120) * point.value) / max;
    const bar = node("rect", { x: left, y: y + 3, width: Math.max(0, barWidth), height: row - 8, class: "series2" });
    bar.append(node("title", {}, `${point.label}: ${format(point.value)}`));
    svg.append(bar);
    svg.append(node("text", { x: left + barWidth + 6, y: y + 15 }, format(point.value)));
  });
  return svg;
}
