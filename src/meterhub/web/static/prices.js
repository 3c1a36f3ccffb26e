"use strict";
// The prices page: a series as steps over a local day and the next, the cheapest and dearest
// hours marked and listed, and a chosen place's cost per hour on a second axis.
(() => {
  const root = document.getElementById("prices");
  const COLORS = { price: "#1c64c8", cheap: "#2b8a3e", dear: "#c92a2a", cost: "rgba(217,72,15,0.35)" };
  const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const HALF_HOUR_MS = 1800000;
  const num = (value, digits = 4) => meterhub.fixed(value, digits);

  function query(day) {
    const params = new URLSearchParams();
    if (root.dataset.series) params.set("series", root.dataset.series);
    if (day) params.set("day", day);
    if (root.dataset.place) params.set("place", root.dataset.place);
    return params;
  }

  function hourMarks(view, key, name, color) {
    const x = [], y = [], text = [];
    view.days.forEach((day) => day[key].forEach((hour) => {
      x.push(Date.parse(hour.start) + HALF_HOUR_MS);
      y.push(hour.price);
      text.push(`${day.day} ${hour.label}`);
    }));
    return { x, y, text, type: "scatter", mode: "markers", name, marker: { color, size: 10, symbol: key === "cheapest" ? "triangle-down" : "triangle-up" },
      hovertemplate: `%{text}: %{y:.4f} ${view.currency}/kWh (${name})<extra></extra>` };
  }

  const NARROW_PX = 600;
  const UPRIGHT_TICK_PX = 18;
  const SLANTED_TICK_PX = 44;
  let shown = null;

  // Every tick whose label fits the chart's width: a day's midnight always, hours thinned evenly.
  function fittingTicks(ticks, widthPx) {
    const narrow = widthPx < NARROW_PX;
    const room = Math.max(2, Math.floor((widthPx - 120) / (narrow ? UPRIGHT_TICK_PX : SLANTED_TICK_PX)));
    const step = Math.max(1, Math.ceil(ticks.t.length / room));
    const t = [], label = [];
    ticks.t.forEach((at, index) => {
      const midnight = ticks.label[index].includes(" ");
      if (midnight || index % step === 0) { t.push(at); label.push(ticks.label[index]); }
    });
    return { t, label, angle: narrow ? -90 : -30 };
  }

  function chart(view) {
    shown = view;
    const ticks = fittingTicks(view.ticks, document.getElementById("prices-chart").clientWidth);
    const traces = [
      { x: view.line.t, y: view.line.price, type: "scatter", mode: "lines", name: `${view.chosen} (${view.currency}/kWh)`,
        line: { shape: "hv", color: COLORS.price, width: 2 }, connectgaps: false, text: view.line.label,
        hovertemplate: `%{text}: %{y:.4f} ${view.currency}/kWh<extra></extra>` },
      hourMarks(view, "cheapest", "cheapest hours", COLORS.cheap),
      hourMarks(view, "dearest", "dearest hours", COLORS.dear),
    ];
    // Upright labels on a narrow chart need room below the plot, and the legend below them.
    const plotPx = 296, belowPx = ticks.angle === -90 ? 118 : 96;
    const layout = {
      margin: { l: 64, r: view.cost ? 64 : 12, t: 8, b: ticks.angle === -90 ? 220 : 96 },
      height: plotPx + 8 + (ticks.angle === -90 ? 220 : 96), hovermode: "closest",
      legend: { orientation: "h", yanchor: "top", y: -belowPx / plotPx },
      // Instants on a linear axis, ticks named in local time: the autumn night's repeated hour runs on.
      xaxis: { type: "linear", title: { text: `time (${view.tz})` }, range: [view.x_start, view.x_end],
        tickmode: "array", tickvals: ticks.t, ticktext: ticks.label, tickangle: ticks.angle },
      yaxis: { title: { text: `${view.currency} per kWh` }, fixedrange: true },
    };
    if (view.cost) {
      traces.unshift({ x: view.cost.t, y: view.cost.total_cost, type: "bar", yaxis: "y2", offset: 0, width: 3600000,
        name: `cost of ${view.cost.name} (${view.cost.currency})`, marker: { color: COLORS.cost },
        customdata: view.cost.energy_import_kwh, text: view.cost.label, textposition: "none", hovertemplate: `%{text}: %{y:.3f} ${view.cost.currency} for %{customdata:.3f} kWh<extra></extra>` });
      layout.yaxis2 = { title: { text: `cost per hour (${view.cost.currency})` }, overlaying: "y", side: "right", rangemode: "tozero", fixedrange: true, showgrid: false };
    }
    Plotly.react("prices-chart", traces, layout, PLOT_CONFIG);
  }

  function hourList(title, hours, kind, currency) {
    const box = document.createElement("div");
    box.className = `hour-list ${kind}`;
    const heading = document.createElement("h3");
    heading.textContent = title;
    const list = document.createElement("ol");
    hours.forEach((hour) => {
      const item = document.createElement("li");
      item.dataset.start = hour.start;
      const label = document.createElement("span");
      label.dataset.field = "hour";
      label.textContent = hour.label;
      const price = document.createElement("span");
      price.dataset.field = "price";
      price.dataset.value = String(hour.price);
      price.textContent = `${num(hour.price)} ${currency}`;
      item.append(label, " ", price);
      list.append(item);
    });
    box.append(heading, list);
    return box;
  }

  function dayPanels(view) {
    const panels = view.days.map((day) => {
      const panel = document.createElement("section");
      panel.className = "panel price-day";
      panel.dataset.day = day.day;
      const heading = document.createElement("h2");
      heading.textContent = day.title;
      const facts = document.createElement("p");
      facts.className = "muted";
      facts.dataset.field = "facts";
      facts.dataset.slots = String(day.priced_slots);
      facts.textContent = day.priced_slots === 0 ? "No prices for this day."
        : `${day.priced_slots} slots of ${day.resolution_min} min · ${day.hours.label.length} hours · from ${num(day.min)} to ${num(day.max)} ${view.currency}/kWh`;
      panel.append(heading, facts);
      if (day.priced_slots > 0) {
        const lists = document.createElement("div");
        lists.className = "hour-lists";
        lists.append(hourList("Cheapest hours", day.cheapest, "cheapest", view.currency), hourList("Dearest hours", day.dearest, "dearest", view.currency));
        panel.append(lists);
      }
      return panel;
    });
    document.getElementById("price-days").replaceChildren(...panels);
  }

  function texts(view) {
    document.getElementById("prices-title").textContent = view.days.map((d) => d.title).join(" and ");
    const resolutions = [...new Set(view.days.map((d) => d.resolution_min).filter((r) => r !== null))];
    document.getElementById("prices-caption").textContent =
      `${view.chosen} · ${view.direction} · ${resolutions.length ? resolutions.map((r) => `${r}-minute`).join(" and ") + " slots" : "no slots"} · ${view.tz}`;
    const note = document.getElementById("cost-note");
    note.hidden = !(view.cost || view.cost_note);
    note.textContent = view.cost
      ? `Bars: what ${view.cost.name} paid per hour under its tariff, ${num(view.cost.total, 2)} ${view.cost.currency} over the two days.`
      : view.cost_note ? `No cost drawn: ${view.cost_note}` : "";
    note.dataset.total = view.cost ? String(view.cost.total) : "";
    document.getElementById("prev").href = `/prices?${query(view.previous_day)}`;
    document.getElementById("next").href = `/prices?${query(view.next_day)}`;
    document.getElementById("day").value = view.day;
  }

  async function load() {
    root.dataset.loading = "true";
    try {
      const view = await meterhub.getJson(`/api/v1/dashboard/prices?${query(root.dataset.day)}`);
      texts(view);
      chart(view);
      dayPanels(view);
    } catch (error) {
      const shown = document.getElementById("load-error");
      shown.textContent = `Could not load the prices: ${error.message}`;
      shown.hidden = false;
    } finally {
      root.dataset.loading = "false";
    }
  }

  // Thinned ticks and the legend depend on the width: draw again once a resize has settled.
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (shown) chart(shown); }, 150);
  });

  load();
})();
