// Deposits per day as an SVG bar chart drawn in the page: received (blue) and sent (green).

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function dailyChart(days, token, pixels = 720) {
  const wrap = document.createElement("div");
  wrap.className = "chart";
  if (!days.length) {
    wrap.textContent = "No deposits yet.";
    return wrap;
  }
  // Drawn at the container's own width, so the labels keep their size on a phone.
  const width = Math.max(240, Math.round(pixels)), height = 200, left = 32, bottom = 28, top = 10;
  const max = Math.max(1, ...days.map((d) => Math.max(d.received, d.sent)));
  const slot = (width - left) / days.length;
  const bar = Math.max(2, Math.min(24, slot / 2 - 2));
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                          "aria-label": "Deposits received and payouts sent per day" });
  const scale = (v) => ((height - bottom - top) * v) / max;
  svg.append(el("text", { x: 0, y: top + 8 }, String(max)), el("text", { x: 0, y: height - bottom }, "0"));
  days.forEach((d, i) => {
    const x = left + i * slot + slot / 2 - bar;
    const received = el("rect", { class: "received", x, width: bar, y: height - bottom - scale(d.received),
                                  height: scale(d.received) });
    const coins = Object.entries(d.received_text).map(([c, v]) => `${v} ${c}`).join(", ");
    received.append(el("title", {}, `${d.day}: ${d.received} received (${coins || "0"})`));
    const sent = el("rect", { class: "sent", x: x + bar, width: bar, y: height - bottom - scale(d.sent),
                              height: scale(d.sent) });
    sent.append(el("title", {}, `${d.day}: ${d.sent} sent (${d.sent_text} ${token})`));
    svg.append(received, sent);
    const labels = Math.max(2, Math.floor(width / 60));
    if (days.length <= labels || i % Math.ceil(days.length / labels) === 0) {
      svg.append(el("text", { x: left + i * slot + slot / 2, y: height - 8, "text-anchor": "middle" },
                    d.day.slice(5)));
    }
  });
  const legend = document.createElement("p");
  legend.className = "legend hint";
  legend.innerHTML = '<span class="received-key"></span>received <span class="sent-key"></span>sent';
  wrap.append(svg, legend);
  return wrap;
}
