"use strict";
// A place's page: energy flow and stacked bars of one local period, its cost, and power now (live).
(() => {
  const root = document.getElementById("place");
  const place = root.dataset.place;
  const tz = root.dataset.tz;
  const COLORS = { selfUse: "#f08c00", grid: "#1c64c8", other: "#7048e8", export: "#2b8a3e", special: "#c2255c",
    before: "#868e96", importCost: "#d9480f", fees: "#868e96", credit: "#2b8a3e" };
  const PLOT_CONFIG = { responsive: true, displaylogo: false, scrollZoom: false,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "toImage", "zoom2d", "pan2d", "autoScale2d"] };
  const UNITS = { "15m": "quarter hour", hour: "hour", day: "day", month: "month" };
  let view = null;
  let loading = 0;
  const period = meterhub.periodControls({ root, current: () => view, load });
  const meters = new Map(); // meter id -> { role, power_w, ts }

  const $ = (selector) => document.querySelector(selector);
  const base = `/api/v1/dashboard/places/${encodeURIComponent(place)}`;

  function money(value, currency) {
    return value === null || value === undefined ? "–" : `${Number(value).toFixed(2)} ${currency}`;
  }

  function drawFlow() {
    const flow = view.flow;
    const before = view.compare && view.compare.flow;
    document.getElementById("energy-note").hidden = !view.energy_note;
    document.getElementById("energy-note").textContent = view.energy_note || "";
    document.querySelectorAll("#flow .figure").forEach((figure) => {
      const key = figure.dataset.figure;
      const item = flow && flow[key];
      const digits = key === "self_sufficiency_pct" ? 1 : 2;
      const value = item ? (key === "self_sufficiency_pct" ? item.pct : item.kwh) : null;
      figure.querySelector('[data-field="value"]').textContent = meterhub.fixed(value, digits);
      figure.dataset.value = value === null ? "" : String(value);
      figure.dataset.estimated = item ? String(item.estimated) : "";
      figure.querySelector('[data-field="source"]').textContent = item ? item.label : "";
      const old = before && before[key];
      const oldValue = old ? (key === "self_sufficiency_pct" ? old.pct : old.kwh) : null;
      figure.querySelector('[data-field="before"]').textContent =
        before ? `${view.compare.title}: ${meterhub.fixed(oldValue, digits)}` : "";
    });
    $("#flow-caption").textContent = flow ? `${view.title} · ${tz}` : view.title;
  }

  function drawBars() {
    const b = view.bars;
    if (!b) { Plotly.purge("energy-chart"); return; }
    const pattern = b.estimated.map((est) => (est ? "/" : ""));
    const bar = (y, name, color, extra = {}) => ({ x: b.label, y, type: "bar", name,
      marker: { color, pattern: { shape: pattern } }, hovertemplate: `%{x}: %{y:.3f} kWh ${name}<extra></extra>`, ...extra });
    const traces = [
      bar(b.self_use_kwh, "self-use (solar)", COLORS.selfUse),
      bar(b.from_grid_kwh, "from grid", COLORS.grid),
    ];
    if (b.other_kwh.some((v) => v)) traces.push(bar(b.other_kwh, "consumption meters", COLORS.other));
    traces.push(bar(b.to_grid_kwh.map((v) => (v === null ? null : -v)), "to grid", COLORS.export,
      { customdata: b.to_grid_kwh, hovertemplate: "%{x}: %{customdata:.3f} kWh to grid<extra></extra>" }));
    if (b.special_load_kwh.some((v) => v)) {
      traces.push({ x: b.label, y: b.special_load_kwh, type: "scatter", mode: "markers", name: "special loads (part of consumption)",
        marker: { symbol: "diamond", size: 8, color: COLORS.special } });
    }
    const old = view.compare && view.compare.bars;
    if (old) {
      const n = Math.min(old.label.length, b.label.length);
      traces.push({ x: b.label.slice(0, n), y: old.consumption_kwh.slice(0, n), type: "scatter", mode: "markers",
        marker: { symbol: "line-ew-open", size: 16, color: COLORS.before, line: { width: 2 } },
        name: `consumption, ${view.compare.title}`, hovertemplate: "%{y:.3f} kWh before<extra></extra>" });
      traces.push({ x: b.label.slice(0, n), y: old.to_grid_kwh.slice(0, n).map((v) => (v === null ? null : -v)), type: "scatter", mode: "markers",
        marker: { symbol: "line-ew-open", size: 16, color: COLORS.before, line: { width: 2 } }, showlegend: false,
        name: `to grid, ${view.compare.title}`, hovertemplate: "%{y:.3f} kWh before<extra></extra>" });
    }
    const layout = {
      margin: { l: 56, r: 12, t: 8, b: 64 }, height: 320, barmode: "relative", bargap: 0.15,
      legend: { orientation: "h", y: -0.3 },
      xaxis: { type: "category", title: { text: `${UNITS[b.unit] || b.unit} (${tz})` }, fixedrange: true },
      yaxis: { title: { text: "kWh (to grid below zero)" }, fixedrange: true },
    };
    Plotly.react("energy-chart", traces, layout, PLOT_CONFIG);
    const chart = document.getElementById("energy-chart");
    chart.dataset.bars = String(b.label.length);
  }

  function drawCost() {
    const note = $("#cost-note");
    if (!note || !$("#cost-chart")) return;
    const c = view.cost;
    note.hidden = !view.cost_note;
    note.textContent = view.cost_note || "";
    $("#cost-totals").hidden = !c;
    if (!c) { Plotly.purge("cost-chart"); $("#cost-caption").textContent = ""; return; }
    const old = view.compare && view.compare.cost;
    document.querySelectorAll("#cost-totals .figure").forEach((figure) => {
      const key = figure.dataset.total;
      figure.dataset.value = String(c.totals[key]);
      figure.querySelector('[data-field="value"]').textContent = Number(c.totals[key]).toFixed(2);
      figure.querySelector(".currency").textContent = c.currency;
      figure.querySelector('[data-field="before"]').textContent = old ? `${view.compare.title}: ${money(old.totals[key], old.currency)}` : "";
    });
    const traces = [
      { x: c.label, y: c.import_cost, type: "bar", name: "import", marker: { color: COLORS.importCost } },
      { x: c.label, y: c.fees, type: "bar", name: "fees", marker: { color: COLORS.fees } },
      { x: c.label, y: c.export_credit.map((v) => -v), type: "bar", name: "export credit", marker: { color: COLORS.credit },
        customdata: c.export_credit, hovertemplate: `%{x}: %{customdata:.2f} ${c.currency} credit<extra></extra>` },
      { x: c.label, y: c.total_cost, type: "scatter", mode: "markers", name: "total", marker: { symbol: "line-ew", size: 14, color: "#1b2430", line: { width: 2 } } },
    ];
    const layout = {
      margin: { l: 56, r: 12, t: 8, b: 64 }, height: 300, barmode: "relative", bargap: 0.15,
      legend: { orientation: "h", y: -0.3 },
      xaxis: { type: "category", title: { text: `${UNITS[c.unit] || c.unit} (${tz})` }, fixedrange: true },
      yaxis: { title: { text: `${c.currency} (credit below zero)` }, fixedrange: true },
    };
    Plotly.react("cost-chart", traces, layout, PLOT_CONFIG);
    let caption = `${c.label.length} ${UNITS[c.unit] || c.unit}${c.label.length === 1 ? "" : "s"} · total ${money(c.totals.total_cost, c.currency)}`;
    if (c.totals.unpriced_import_kwh > 0) caption += ` · ${c.totals.unpriced_import_kwh} kWh without a price`;
    if (old) caption += ` · ${view.compare.title}: ${money(old.totals.total_cost, old.currency)}`;
    $("#cost-caption").textContent = caption;
  }

  async function load() {
    const ticket = ++loading;
    root.dataset.loading = "true";
    try {
      const body = await meterhub.getJson(`${base}/view?${period.query()}`);
      if (ticket !== loading) return;
      view = body;
      period.loaded(view);
      drawFlow();
      drawBars();
      drawCost();
    } catch (error) {
      $("#period-title").textContent = `Could not load this period: ${error.message}`;
    } finally {
      if (ticket === loading) root.dataset.loading = "false";
    }
  }

  // The power flow from each meter's newest power: the same sums as place_views.power_flow.
  function powerFlow() {
    const sum = (role, clip) => {
      const values = [...meters.values()].filter((m) => m.role === role && m.power_w !== null).map((m) => (clip ? Math.max(0, m.power_w) : m.power_w));
      return values.length ? values.reduce((a, b) => a + b, 0) : null;
    };
    const grid = sum("grid", false), solar = sum("solar", true), other = sum("consumption", true);
    const importW = grid === null ? null : Math.max(0, grid);
    const exportW = grid === null ? null : Math.max(0, -grid);
    const selfUse = solar === null ? null : Math.max(0, solar - (exportW || 0));
    const parts = [importW, selfUse, other];
    const home = parts.every((p) => p === null) ? null : parts.reduce((a, p) => a + (p || 0), 0);
    return { import_w: importW, export_w: exportW, solar_w: solar, self_use_w: selfUse, special_w: sum("special", false), other_w: other, home_w: home };
  }

  function drawNow() {
    const flow = powerFlow();
    document.querySelectorAll("#powerflow .flow-item").forEach((item) => {
      const value = flow[item.dataset.flow];
      item.hidden = value === null;
      item.dataset.value = value === null ? "" : String(Math.round(value * 10) / 10);
      item.querySelector('[data-field="value"]').textContent = meterhub.fixed(value, 0);
    });
    const body = $("#meters-now tbody");
    body.replaceChildren(...[...meters.entries()].map(([id, m]) => {
      const row = document.createElement("tr");
      row.dataset.meter = id;
      [id, m.role, meterhub.fixed(m.power_w, 1), meterhub.age(m.ts)].forEach((text, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        if (i === 2) cell.className = "num";
        cell.textContent = text;
        row.append(cell);
      });
      return row;
    }));
    const newest = [...meters.values()].map((m) => m.ts).filter(Boolean).sort().pop();
    $("#now-age").textContent = newest ? `newest reading ${meterhub.age(newest)}` : "no readings yet";
  }

  function drawCostNow(cost) {
    const box = $("#cost-now");
    if (!box || !cost) return;
    box.hidden = Boolean(cost.note);
    if (cost.note) return;
    for (const key of ["today", "month", "last_month"]) {
      const figure = box.querySelector(`[data-cost="${key}"]`);
      const part = cost[key];
      figure.dataset.value = String(part.total_cost);
      figure.querySelector('[data-field="value"]').textContent = money(part.total_cost, part.currency);
      figure.querySelector('[data-field="detail"]').textContent =
        `import ${part.import_cost.toFixed(2)} · credit ${part.export_credit.toFixed(2)} · fees ${part.fees.toFixed(2)} · to ${part.until}`;
    }
    const delta = cost.month.total_cost - cost.last_month.total_cost;
    box.querySelector('[data-cost="month"] [data-field="detail"]').textContent +=
      ` · ${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(2)} vs last month`;
  }

  async function loadNow() {
    try {
      const body = await meterhub.getJson(`${base}/now`);
      meters.clear();
      body.power.meters.forEach((m) => meters.set(m.meter, { role: m.role, power_w: m.power_w, ts: m.ts }));
      drawNow();
      drawCostNow(body.cost);
      root.dataset.nowLoaded = "true";
    } catch (error) {
      $("#now-age").textContent = `could not load: ${error.message}`;
    }
  }

  function onReadings(batch) {
    let changed = false;
    batch.forEach((r) => {
      const known = meters.get(r.meter);
      if (!known || r.phase !== 0) return;
      known.power_w = r.power_w;
      known.ts = r.ts;
      changed = true;
    });
    if (changed) {
      drawNow();
      refreshSoon();
    }
  }

  // Cost so far and the figures of meters the stream does not bring are read again after new
  // readings arrive, at most every half minute: no request is made while nothing is stored.
  let refreshTimer = null;
  let lastRefresh = Date.now();
  function refreshSoon() {
    if (refreshTimer !== null) return;
    const wait = Math.max(0, lastRefresh + 30_000 - Date.now());
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      lastRefresh = Date.now();
      loadNow().catch(() => {});
    }, wait);
  }

  load();
  loadNow().then(() => meterhub.live(onReadings, $("#live-state")));
  setInterval(drawNow, 15_000); // keeps the readings' ages current, in the page alone
})();
