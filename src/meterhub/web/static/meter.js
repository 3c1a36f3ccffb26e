"use strict";
// A meter's page: power (average line, min–max band, gaps kept) and energy bars of one local period.
(() => {
  const root = document.getElementById("meter");
  const meter = root.dataset.meter;
  const tz = root.dataset.tz;
  const COLORS = { avg: "#1c64c8", band: "rgba(28,100,200,0.18)", before: "#868e96", import: "#d9480f", export: "#2b8a3e" };
  const PLOT_CONFIG = { responsive: true, displaylogo: false, scrollZoom: false,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "toImage"] };
  let view = null;
  let loading = 0;
  const period = meterhub.periodControls({ root, current: () => view, load });

  function powerTraces(power, name, color, band) {
    const traces = [];
    if (band) {
      // The min–max band as one bar per bucket: a bucket without readings has none, so the band
      // never bridges a gap (a filled area would).
      const spread = power.max_w.map((max, i) => (max === null || power.min_w[i] === null ? null : max - power.min_w[i]));
      traces.push({ x: power.t, y: spread, base: power.min_w, type: "bar", width: power.bucket_s * 1000, offset: 0,
        marker: { color: COLORS.band, line: { width: 0 } }, name: "min–max", hoverinfo: "skip" });
    }
    traces.push({ x: power.t, y: power.avg_w, type: "scatter", mode: "lines", connectgaps: false, name,
      line: { color, width: band ? 1.6 : 1.2, dash: band ? "solid" : "dot" } });
    return traces;
  }

  function isolatedMarkers(power) {
    // A reading joined to no neighbour would draw no line: show it as a dot.
    const x = [], y = [];
    power.avg_w.forEach((v, i) => {
      if (v === null) return;
      const before = i > 0 ? power.avg_w[i - 1] : null;
      const after = i + 1 < power.avg_w.length ? power.avg_w[i + 1] : null;
      if (before === null && after === null) { x.push(power.t[i]); y.push(v); }
    });
    return { x, y, type: "scatter", mode: "markers", marker: { color: COLORS.avg, size: 5 }, name: "lone reading", showlegend: false };
  }

  function drawPower() {
    const traces = powerTraces(view.power, "average", COLORS.avg, true);
    traces.push(isolatedMarkers(view.power));
    if (view.compare) traces.push(...powerTraces(view.compare.power, `average, ${view.compare.title}`, COLORS.before, false));
    const layout = {
      margin: { l: 56, r: 12, t: 8, b: 48 }, height: 320, hovermode: "x unified", bargap: 0,
      legend: { orientation: "h", y: -0.22 },
      xaxis: { type: "date", title: { text: `time (${tz})` }, range: [view.x_start, view.x_end] },
      yaxis: { title: { text: "W" }, rangemode: "tozero", fixedrange: true },
      dragmode: "zoom",
    };
    document.getElementById("power-note").textContent =
      `${view.power.bucket_s >= 86400 ? "per day" : `per ${bucketText(view.power.bucket_s)}`} · ${tz}`;
    Plotly.react("power-chart", traces, layout, PLOT_CONFIG);
  }

  function bucketText(seconds) {
    if (seconds % 3600 === 0) return `${seconds / 3600} h`;
    if (seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  }

  function drawEnergy() {
    const e = view.energy;
    const pattern = e.estimated.map((est) => (est ? "/" : ""));
    const traces = [
      { x: e.label, y: e.import_kwh, type: "bar", name: "import", marker: { color: COLORS.import, pattern: { shape: pattern } },
        customdata: e.source, hovertemplate: "%{x}: %{y:.3f} kWh imported (%{customdata})<extra></extra>" },
      { x: e.label, y: e.export_kwh.map((v) => (v === null ? null : -v)), type: "bar", name: "export", marker: { color: COLORS.export, pattern: { shape: pattern } },
        customdata: e.export_kwh, hovertemplate: "%{x}: %{customdata:.3f} kWh exported<extra></extra>" },
    ];
    if (view.compare && view.compare.energy) {
      const c = view.compare.energy;
      const n = Math.min(c.label.length, e.label.length);
      traces.push({ x: e.label.slice(0, n), y: c.import_kwh.slice(0, n), type: "scatter", mode: "markers",
        marker: { symbol: "line-ew-open", size: 14, color: COLORS.before, line: { width: 2 } },
        name: `import, ${view.compare.title}`, hovertemplate: "%{y:.3f} kWh before<extra></extra>" });
    }
    const layout = {
      margin: { l: 56, r: 12, t: 8, b: 64 }, height: 300, barmode: "relative", bargap: 0.15,
      legend: { orientation: "h", y: -0.3 },
      xaxis: { type: "category", title: { text: `${unitText(e.unit)} (${tz})` }, fixedrange: true },
      yaxis: { title: { text: "kWh (export below zero)" }, fixedrange: true },
    };
    Plotly.react("energy-chart", traces, layout, PLOT_CONFIG);
    let caption = `${e.label.length} ${unitText(e.unit)}${e.label.length === 1 ? "" : "s"} · import ${e.total_import_kwh.toFixed(2)} kWh · export ${e.total_export_kwh.toFixed(2)} kWh`;
    if (view.compare && view.compare.energy) {
      const before = view.compare.energy.total_import_kwh;
      const delta = e.total_import_kwh - before;
      caption += ` · ${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(2)} kWh import vs ${view.compare.title}`;
    }
    const caps = document.getElementById("energy-caption");
    caps.textContent = caption;
    caps.dataset.bars = String(e.label.length);
  }

  function unitText(unit) {
    return { "15m": "quarter hour", hour: "hour", day: "day", month: "month" }[unit] || unit;
  }

  // The Device panel: each series' last value and age, and a small chart of the period for the
  // series worth drawing (a relay as on/off steps).
  function durationText(seconds) {
    const s = Math.round(seconds);
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min`;
    if (s < 172800) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function deviceValue(series, value) {
    if (value === null || value === undefined) return "–";
    if (series.kind === "state") return value >= 0.5 ? "on" : "off";
    if (series.unit === "s") return durationText(value);
    const digits = series.unit === "kWh" ? 3 : series.unit === "V" ? 2 : Number.isInteger(value) ? 0 : 1;
    return `${Number(value).toFixed(digits)} ${series.unit}`.trim();
  }

  function deviceTraces(series) {
    const v = series.values;
    const state = series.kind === "state";
    const color = state ? COLORS.export : COLORS.avg;
    const traces = [];
    if (v.bucket_s && !state) {
      traces.push({ x: v.t, y: v.min, type: "scatter", mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false });
      traces.push({ x: v.t, y: v.max, type: "scatter", mode: "lines", line: { width: 0 }, fill: "tonexty",
        fillcolor: COLORS.band, hoverinfo: "skip", showlegend: false });
    }
    const few = v.t.length <= 60;
    traces.push({
      x: v.t, y: v.v, type: "scatter", mode: few && !state ? "lines+markers" : "lines", showlegend: false,
      name: series.label, line: { color, width: 1.6, shape: state ? "hv" : "linear" }, marker: { size: 4, color },
      fill: state ? "tozeroy" : "none", fillcolor: "rgba(43,138,62,0.15)",
      hovertemplate: state
        ? (v.bucket_s ? "%{y:.0%} of reports on<extra></extra>" : "%{customdata}<extra></extra>")
        : `%{y:.2f} ${series.unit}<extra></extra>`,
      customdata: state ? v.v.map((x) => (x >= 0.5 ? "on" : "off")) : undefined,
    });
    return traces;
  }

  function drawDeviceChart(element, series, body) {
    const state = series.kind === "state";
    const empty = series.values.t.length === 0;
    const layout = {
      margin: { l: 56, r: 12, t: 28, b: 32 }, height: 170, hovermode: "x unified",
      title: { text: `${series.label}${state || !series.unit ? "" : ` (${series.unit})`}`, font: { size: 13 }, x: 0.01, y: 0.97 },
      xaxis: { type: "date", range: [body.x_start, body.x_end], fixedrange: true },
      yaxis: state
        ? { tickvals: [0, 1], ticktext: ["off", "on"], range: [-0.1, 1.15], fixedrange: true }
        : { title: { text: series.unit }, fixedrange: true },
      annotations: empty
        ? [{ text: "no values in this period", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }]
        : [],
    };
    Plotly.react(element, empty ? [] : deviceTraces(series), layout, PLOT_CONFIG);
  }

  function drawDevice(body) {
    const panel = document.getElementById("device");
    const list = (body && body.device) || [];
    panel.hidden = list.length === 0;
    if (list.length === 0) return;
    const rows = list.map((series) => {
      const row = document.createElement("tr");
      row.dataset.series = series.name;
      const label = document.createElement("th");
      label.scope = "row";
      label.textContent = series.label;
      label.title = series.name;
      const value = document.createElement("td");
      value.dataset.field = "value";
      value.textContent = deviceValue(series, series.last_value);
      const age = document.createElement("td");
      age.dataset.field = "age";
      age.textContent = meterhub.age(series.last);
      age.title = series.last;
      const count = document.createElement("td");
      count.dataset.field = "count";
      count.textContent = String(series.count);
      row.append(label, value, age, count);
      return row;
    });
    document.querySelector("#device-table tbody").replaceChildren(...rows);
    const charts = document.getElementById("device-charts");
    const drawn = list.filter((series) => series.chart && series.values);
    const elements = drawn.map((series) => {
      const element = document.createElement("div");
      element.className = "device-chart";
      element.dataset.series = series.name;
      element.setAttribute("role", "img");
      element.setAttribute("aria-label", `${series.label} over the period`);
      return element;
    });
    charts.replaceChildren(...elements);
    drawn.forEach((series, i) => drawDeviceChart(elements[i], series, body));
    document.getElementById("device-note").textContent =
      `${list.length} series · last values now; ${drawn.length === 1 ? "chart" : "charts"} of this period (${tz})`;
  }

  function links() {
    const params = new URLSearchParams({ start: view.start, end: view.end });
    document.getElementById("csv").href = `/api/v1/meters/${encodeURIComponent(meter)}/readings?${params}&points=${Math.max(view.power.t.length, 10)}&format=csv`;
    document.getElementById("csv").setAttribute("download", `${meter}-${view.anchor.replace(/[:]/g, "")}.csv`);
    document.getElementById("png").href = `/api/v1/meters/${encodeURIComponent(meter)}/chart.png?${params}&width=1200&height=500`;
    document.getElementById("png").setAttribute("download", `${meter}-${view.anchor.replace(/[:]/g, "")}.png`);
  }

  async function load() {
    const ticket = ++loading;
    root.dataset.loading = "true";
    const url = (part) => `/api/v1/dashboard/meters/${encodeURIComponent(meter)}/view?${period.query(part)}`;
    try {
      // Power and energy come in two requests at once: each is its own quick read of the rollups.
      // The device series come in a third; the page draws without them if they fail.
      const device = meterhub.getJson(url({ power: "false", energy: "false", device: "true" })).catch(() => null);
      const [power, energy] = await Promise.all([
        meterhub.getJson(url({ energy: "false" })),
        meterhub.getJson(url({ power: "false" })),
      ]);
      if (ticket !== loading) return;
      view = { ...power, energy: energy.energy };
      if (power.compare) view.compare = { ...power.compare, energy: energy.compare && energy.compare.energy };
      period.loaded(view);
      drawPower();
      drawEnergy();
      links();
      const deviceBody = await device;
      if (ticket === loading) drawDevice(deviceBody);
    } catch (error) {
      document.getElementById("period-title").textContent = `Could not load this period: ${error.message}`;
    } finally {
      if (ticket === loading) root.dataset.loading = "false";
    }
  }

  async function zoomTo(x0, x1) {
    // Finer buckets for the zoomed stretch; the period and its energy bars stay.
    const params = new URLSearchParams({ range: "custom", start: x0.replace(" ", "T"), end: x1.replace(" ", "T"), energy: "false" });
    const ticket = ++loading;
    root.dataset.loading = "true";
    try {
      const body = await meterhub.getJson(`/api/v1/dashboard/meters/${encodeURIComponent(meter)}/view?${params}`);
      if (ticket !== loading) return;
      view = { ...view, power: body.power, x_start: body.x_start, x_end: body.x_end, start: body.start, end: body.end, compare: null };
      drawPower();
      links();
      period.show(view, `${view.title} (zoomed)`);
    } catch (error) {
      document.getElementById("period-title").textContent = `Could not zoom: ${error.message}`;
    } finally {
      if (ticket === loading) root.dataset.loading = "false";
    }
  }

  function onRelayout(event) {
    if (event["xaxis.autorange"]) { load(); return; }
    const x0 = event["xaxis.range[0]"], x1 = event["xaxis.range[1]"];
    if (x0 && x1) zoomTo(String(x0).slice(0, 19), String(x1).slice(0, 19));
  }

  function onReadings(batch) {
    batch.forEach((r) => {
      if (r.meter !== meter) return;
      const name = r.phase === 0 ? "total" : `L${r.phase}`;
      const row = document.querySelector(`#phases tr[data-phase="${name}"]`);
      if (!row) return;
      row.querySelector('[data-field="voltage_v"]').textContent = meterhub.fixed(r.voltage_v, 1);
      row.querySelector('[data-field="current_a"]').textContent = meterhub.fixed(r.current_a, 2);
      row.querySelector('[data-field="power_w"]').textContent = meterhub.fixed(r.power_w, 1);
    });
  }

  load().then(() => document.getElementById("power-chart").on("plotly_relayout", onRelayout));
  meterhub.live(onReadings, null);
})();
