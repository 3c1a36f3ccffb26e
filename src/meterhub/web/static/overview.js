"use strict";
// The overview: live power from the event stream, ages ticking, today's energy refreshed after new readings.
(() => {
  const cards = new Map();
  document.querySelectorAll(".card[data-meter]").forEach((card) => cards.set(card.dataset.meter, card));
  const field = (card, name) => card.querySelector(`[data-field="${name}"]`);

  function tick() {
    const now = Date.now();
    cards.forEach((card) => {
      field(card, "age").textContent = meterhub.age(card.dataset.readingAt, now);
    });
  }

  let refreshTimer = null;
  let lastRefresh = 0;
  const REFRESH_GAP_MS = 10000;
  async function refreshToday() {
    refreshTimer = null;
    lastRefresh = Date.now();
    const body = await meterhub.getJson("/api/v1/dashboard/overview");
    body.cards.forEach((c) => {
      const card = cards.get(c.meter);
      if (!card) return;
      field(card, "import_today").textContent = meterhub.fixed(c.import_today_kwh, 2);
      field(card, "export_today").textContent = meterhub.fixed(c.export_today_kwh, 2);
    });
  }
  function scheduleRefresh() {
    if (refreshTimer !== null) return;
    const wait = Math.max(0, lastRefresh + REFRESH_GAP_MS - Date.now());
    refreshTimer = setTimeout(() => refreshToday().catch(() => {}), wait);
  }

  function onReadings(batch) {
    let changed = false;
    batch.forEach((r) => {
      const card = cards.get(r.meter);
      if (!card || r.phase !== 0) return;
      if (card.dataset.readingAt && Date.parse(r.ts) < Date.parse(card.dataset.readingAt)) return;
      card.dataset.readingAt = r.ts;
      if (r.power_w !== null) field(card, "power").textContent = meterhub.fixed(r.power_w, 0);
      const status = field(card, "status");
      status.textContent = "online";
      status.className = "status online";
      card.classList.add("fresh");
      setTimeout(() => card.classList.remove("fresh"), 800);
      changed = true;
    });
    tick();
    if (changed) scheduleRefresh();
  }

  tick();
  setInterval(tick, 1000);
  meterhub.live(onReadings, document.getElementById("live-state"));
})();
