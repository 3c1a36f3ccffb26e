"use strict";
// Shared by the dashboard's pages: the CSRF token, ages in words, numbers, the live stream, and
// the period controls of a meter's and a place's page.
const meterhub = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  function age(iso, now = Date.now()) {
    if (!iso) return "never";
    const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function fixed(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      throw new Error("signed out");
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || `the hub answered ${response.status}`);
    return body;
  }

  // One EventSource per page; handlers get each batch of readings (a list).
  function live(onReadings, stateElement) {
    const source = new EventSource("/api/v1/events");
    const show = (state, text) => {
      if (!stateElement) return;
      stateElement.dataset.state = state;
      stateElement.textContent = text;
    };
    source.addEventListener("hello", () => show("live", "live"));
    source.addEventListener("readings", (event) => onReadings(JSON.parse(event.data)));
    source.addEventListener("error", () => show("retrying", "reconnecting…"));
    return source;
  }

  // The period controls (templates/period_controls.html) of the page whose element is `root`:
  // range buttons, previous/today/next, a custom range and the compare box. `current()` gives the
  // view last shown and `load()` reads the period in `state` again.
  function periodControls({ root, current, load }) {
    const $ = (id) => document.getElementById(id);
    const compareBox = $("compare");
    const state = { range: root.dataset.range || "day", anchor: root.dataset.anchor || "", start: "", end: "" };
    const local = (text) => text.slice(0, 16).replace(" ", "T");

    // The period's query, with `extra` parameters of the page's own.
    function query(extra = {}) {
      const params = new URLSearchParams({ range: state.range });
      if (state.range === "custom") {
        if (state.start) params.set("start", state.start);
        if (state.end) params.set("end", state.end);
      } else if (state.anchor) params.set("anchor", state.anchor);
      if (compareBox.checked) params.set("compare", "true");
      Object.entries(extra).forEach(([k, v]) => params.set(k, v));
      return params;
    }

    function remember() {
      const params = new URLSearchParams({ range: state.range });
      if (state.range === "custom") { params.set("start", state.start); params.set("end", state.end); }
      else if (state.anchor) params.set("anchor", state.anchor);
      history.replaceState(null, "", `${location.pathname}?${params}`);
    }

    // Shows `view` in the controls, under `title`.
    function show(view, title = view.title) {
      document.querySelectorAll(".ranges button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === state.range)));
      $("custom").hidden = state.range !== "custom";
      $("prev").disabled = !view.previous_anchor;
      $("next").disabled = !view.next_anchor;
      $("period-title").textContent = title;
      if (state.range === "custom") {
        $("custom-start").value = local(view.x_start);
        $("custom-end").value = local(view.x_end);
      }
    }

    // After a period is read: keeps its anchor, puts it in the address and shows it.
    function loaded(view) {
      if (state.range !== "custom") state.anchor = view.anchor;
      remember();
      show(view);
    }

    document.querySelectorAll(".ranges button").forEach((button) => button.addEventListener("click", () => {
      const view = current();
      state.range = button.dataset.range;
      if (state.range === "custom") {
        state.start = local(view.x_start);
        state.end = local(view.x_end);
      } else if (view) state.anchor = view.anchor.slice(0, 10);
      load();
    }));
    $("prev").addEventListener("click", () => { state.anchor = current().previous_anchor; load(); });
    $("next").addEventListener("click", () => { state.anchor = current().next_anchor; load(); });
    $("today").addEventListener("click", () => {
      state.anchor = "";
      if (state.range === "custom") state.range = "day";
      load();
    });
    $("custom").addEventListener("submit", (event) => {
      event.preventDefault();
      state.start = $("custom-start").value;
      state.end = $("custom-end").value;
      load();
    });
    compareBox.addEventListener("change", load);

    const params = new URLSearchParams(location.search);
    if (state.range === "custom") { state.start = params.get("start") || ""; state.end = params.get("end") || ""; }
    return { state, query, show, loaded };
  }

  return { csrf, age, fixed, getJson, live, periodControls };
})();
