"use strict";
// A place's capacity-tariff month: each day's biggest hour, the top days, the thresholds, and
// the hour in progress, kept up to date from the live stream of the place's grid meters.
(() => {
  const root = document.getElementById("capacity");
  const place = root.dataset.place;
  const month = root.dataset.month;
  const tz = root.dataset.tz;
  const COLORS = { top: "#d9480f", day: "#adb5bd", value: "#1c64c8", threshold: "#495057", hour: "#2b8a3e" };
  const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  let view = null;
  let registers = {};
  let soFar = 0;
  let loading = false;
  let pending = [];
  let hourTimer = null;
  let source = null;

  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  const num = (value, digits = 2) => meterhub.fixed(value, digits);

  function show(name, value, digits = 2) {
    const element = field(name);
    element.textContent = num(value, digits);
    element.dataset.value = value === null || value === undefined ? "" : String(value);
  }

  function figures() {
    show("month_value_kwh", view.month_value_kwh);
    // With fewer days of data than the tariff counts, the mean is of the days there are.
    field("peak_days").textContent = String(Math.min(view.peak_days, view.peaks.length) || view.peak_days);
    const step = field("step");
    const last = view.thresholds_kwh[view.thresholds_kwh.length - 1];
    step.textContent = view.step_kwh === null ? `above the last threshold (${last} kWh/h)` : `up to ${view.step_kwh} kWh/h`;
    step.dataset.value = view.step_kwh === null ? "" : String(view.step_kwh);
    show("left_in_step_kwh", view.left_in_step_kwh);
    field("next_step").textContent = view.step_kwh === null ? "" :
      view.next_threshold_kwh === null ? "(the last step)" : `before the ${view.next_threshold_kwh} kWh/h step`;
    show("month_import_kwh", view.month_import_kwh, 1);
    document.getElementById("estimated").hidden = !view.estimated;
    const missing = view.missing_days || [];
    document.getElementById("missing-days").hidden = missing.length === 0;
    document.querySelector('[data-field="missing_days"]').textContent = missing.join(", ");
    document.getElementById("as-of").textContent = view.live
      ? `Month to date: ${view.hours} hours with data, up to ${view.as_of_local}`
      : `The whole month: ${view.hours} hours with data`;
  }

  function peaksTable() {
    const body = document.querySelector("#peaks tbody");
    body.replaceChildren(...view.peaks.map((peak) => {
      const row = document.createElement("tr");
      const day = new Date(`${peak.day}T12:00:00Z`).toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });
      [[day, "day"], [peak.hour, "hour"], [num(peak.energy_kwh, 3), "energy_kwh"]].forEach(([text, name]) => {
        const cell = document.createElement("td");
        cell.textContent = text;
        cell.dataset.field = name;
        if (name === "energy_kwh") cell.className = "num";
        row.append(cell);
      });
      row.dataset.day = peak.day;
      return row;
    }));
    document.getElementById("no-peaks").hidden = view.peaks.length > 0;
  }

  function shownThresholds() {
    // Thresholds up to the first one above everything drawn, so the big steps do not flatten the bars.
    const drawn = [view.month_value_kwh, ...view.days.peak_kwh.filter((v) => v !== null)];
    if (view.live) drawn.push(soFar);
    const highest = Math.max(0, ...drawn);
    const shown = [];
    for (const t of view.thresholds_kwh) {
      shown.push(t);
      if (t > highest && (view.next_threshold_kwh === null || t >= view.next_threshold_kwh)) break;
    }
    return shown;
  }

  function chart() {
    const d = view.days;
    const traces = [{
      x: d.label, y: d.peak_kwh, type: "bar", name: "day's biggest hour",
      marker: { color: d.top.map((top) => (top ? COLORS.top : COLORS.day)) },
      customdata: d.hour, hovertemplate: "%{x}: %{y:.3f} kWh at %{customdata}<extra></extra>",
    }];
    if (view.live) {
      const today = d.day.indexOf(view.live.day);
      if (today >= 0) {
        traces.push({ x: [d.label[today]], y: [soFar], type: "scatter", mode: "markers", name: "this hour so far",
          marker: { color: COLORS.hour, size: 12, symbol: "diamond" }, hovertemplate: "this hour so far: %{y:.3f} kWh<extra></extra>" });
      }
    }
    const thresholds = shownThresholds();
    const line = (y, color, dash) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color, width: 1.5, dash } });
    const shapes = [...thresholds.map((t) => line(t, COLORS.threshold, "dash")), line(view.month_value_kwh, COLORS.value, "solid")];
    const annotations = [
      ...thresholds.map((t) => ({ xref: "paper", x: 1, y: t, text: `${t} kWh/h`, showarrow: false, xanchor: "right", yanchor: "bottom", font: { size: 11, color: COLORS.threshold } })),
      { xref: "paper", x: 0, y: view.month_value_kwh, text: `month value ${num(view.month_value_kwh)}`, showarrow: false, xanchor: "left", yanchor: "bottom", font: { size: 11, color: COLORS.value } },
    ];
    const layout = {
      margin: { l: 56, r: 12, t: 8, b: 64 }, height: 340, bargap: 0.2, showlegend: false, shapes, annotations,
      xaxis: { type: "category", title: { text: `day (${tz})` }, fixedrange: true },
      yaxis: { title: { text: "kWh in the hour" }, rangemode: "tozero", range: [0, Math.max(...thresholds) * 1.08], fixedrange: true },
    };
    Plotly.react("capacity-chart", traces, layout, PLOT_CONFIG);
    const caption = document.getElementById("chart-caption");
    caption.textContent = `${d.peak_kwh.filter((v) => v !== null).length} days with data · top ${view.peaks.length} highlighted`;
    caption.dataset.bars = String(d.label.length);
  }

  function liveHour() {
    const section = document.getElementById("live-hour");
    section.hidden = !view.live;
    document.getElementById("live-state").hidden = !view.live;
    if (!view.live) return;
    const live = view.live;
    field("hour").textContent = `${live.day} ${live.hour}`;
    show("hour_import_kwh", soFar, 3);
    const text = field("allowance_text");
    if (live.hour_cap_kwh === null) {
      text.textContent = "The month value is above the last threshold: no step is left to stay in.";
      text.dataset.value = "";
      return;
    }
    const allowance = live.hour_cap_kwh - soFar;
    text.dataset.value = String(allowance);
    text.textContent = allowance >= 0
      ? `This hour may import ${num(allowance, 3)} kWh more (${num(live.hour_cap_kwh, 3)} kWh in all) before the month value passes ${view.step_kwh} kWh/h.`
      : `This hour has imported ${num(-allowance, 3)} kWh more than the ${num(live.hour_cap_kwh, 3)} kWh that keep the month value within ${view.step_kwh} kWh/h.`;
  }

  function draw() {
    figures();
    peaksTable();
    chart();
    liveHour();
  }

  function onReadings(readings) {
    if (loading) { pending.push(...readings); return; }
    if (!view || !view.live) return;
    const live = view.live;
    const hourStart = Date.parse(live.hour_start);
    const hourEnd = Date.parse(live.hour_end);
    let changed = false;
    for (const r of readings) {
      if (r.phase !== 0 || r.energy_import_kwh === null || !live.grid_meters.includes(r.meter)) continue;
      const ts = Date.parse(r.ts);
      const before = registers[r.meter];
      if (ts >= hourEnd || (before && r.energy_import_kwh < before.import_kwh)) { load(); return; }
      if (before) {
        const t0 = Date.parse(before.ts);
        if (ts <= t0) continue;
        // The rollups spread an increment over its interval by time: count the part in this hour.
        const inHour = ts - Math.max(t0, hourStart);
        if (inHour > 0) soFar += (r.energy_import_kwh - before.import_kwh) * inHour / (ts - t0);
      }
      registers[r.meter] = { import_kwh: r.energy_import_kwh, ts: r.ts };
      changed = true;
    }
    if (changed) { liveHour(); chart(); }
  }

  async function load() {
    loading = true;
    root.dataset.loading = "true";
    try {
      view = await meterhub.getJson(`/api/v1/dashboard/places/${encodeURIComponent(place)}/capacity?month=${month}`);
      registers = view.live ? { ...view.live.registers } : {};
      soFar = view.live ? view.live.import_kwh : 0;
      document.getElementById("load-error").hidden = true;
      draw();
      if (hourTimer) clearTimeout(hourTimer);
      if (view.live) {
        // When the hour ends it joins the month's figures, even if no reading says so.
        hourTimer = setTimeout(load, Math.max(1000, Date.parse(view.live.hour_end) - Date.now() + 5000));
        if (!source) source = meterhub.live(onReadings, document.getElementById("live-state"));
      }
    } catch (error) {
      const shown = document.getElementById("load-error");
      shown.textContent = `Could not load this month: ${error.message}`;
      shown.hidden = false;
    } finally {
      loading = false;
      // Readings that came while the figures were read: those newer than the registers count.
      const waiting = pending;
      pending = [];
      if (waiting.length) onReadings(waiting);
      root.dataset.loading = "false";
    }
  }

  load();
})();
