"use strict";
// Shared by the dashboard's pages: the CSRF token, ages in words, numbers, the live stream.
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

  return { csrf, age, fixed, getJson, live };
})();
