"use strict";
// The backfill page: each run's progress as the hub reports it, over server-sent events.
(() => {
  const box = document.getElementById("runs");
  if (!box || box.dataset.live !== "yes") return;

  function row(run) {
    let item = box.querySelector(`.run[data-meter="${CSS.escape(run.meter)}"]`);
    if (!item) {
      item = document.createElement("div");
      item.className = "run";
      item.dataset.meter = run.meter;
      const line = document.createElement("span");
      const name = document.createElement("strong");
      name.textContent = run.meter;
      line.append(name, " ");
      for (const field of ["percent", "state", "message"]) {
        const part = document.createElement(field === "message" ? "small" : "span");
        part.dataset.field = field;
        if (field === "message") part.className = "muted";
        line.append(part, field === "percent" ? " · " : " ");
      }
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", `Backfill of ${run.meter}`);
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      bar.append(document.createElement("span"));
      item.append(line, bar);
      box.querySelector('[data-field="no-runs"]')?.remove();
      box.append(item);
    }
    return item;
  }

  function show(runs) {
    for (const run of runs) {
      const item = row(run);
      const percent = Math.round(run.percent_done);
      item.dataset.state = run.state;
      item.querySelector('[data-field="percent"]').textContent = `${percent}%`;
      item.querySelector('[data-field="state"]').textContent = run.state;
      item.querySelector('[data-field="message"]').textContent = run.message;
      const bar = item.querySelector(".bar");
      bar.setAttribute("aria-valuenow", String(percent));
      bar.firstElementChild.style.width = `${run.percent_done}%`;
    }
  }

  const source = new EventSource("/api/v1/dashboard/backfills/events");
  source.addEventListener("backfills", (event) => show(JSON.parse(event.data)));
})();
