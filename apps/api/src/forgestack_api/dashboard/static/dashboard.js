// ForgeStack dashboard: confirmations, JSON field checks and live updates (server-sent events).
// Plain script, no build step and nothing fetched from elsewhere; every page works without it
// (the server asks for confirmation itself), it only makes the pages nicer and live.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var prompt = form.getAttribute("data-confirm");
  if (!prompt) return;
  if (!window.confirm(prompt)) {
    event.preventDefault();
    return;
  }
  if (form.elements.confirmed) form.elements.confirmed.value = "yes";
});

function checkJson(area) {
  var text = area.value.trim();
  if (!text) { area.setCustomValidity(""); return; }
  try {
    JSON.parse(text);
    area.setCustomValidity("");
  } catch (err) {
    area.setCustomValidity("Not valid JSON: " + err.message);
  }
}

document.addEventListener("input", function (event) {
  if (event.target.hasAttribute && event.target.hasAttribute("data-json")) checkJson(event.target);
});

function percent(value) {
  return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%";
}

function updateOverview(queues) {
  queues.forEach(function (q) {
    var values = Object.assign({}, q.counts, {
      throughput_per_min: q.throughput_per_min,
      failure_rate: percent(q.failure_rate),
      workers: q.workers,
    });
    Object.keys(values).forEach(function (key) {
      document.querySelectorAll('[data-live="' + q.name + ":" + key + '"]').forEach(function (el) {
        el.textContent = String(values[key]);
      });
    });
    document.querySelectorAll('[data-live="' + q.name + ':paused"]').forEach(function (el) {
      el.hidden = !q.paused;
    });
  });
}

function updateJob(job) {
  var detail = document.getElementById("job-detail");
  if (!detail || !job.html) return;
  // A running job's progress and log lines change without a state change.
  if (detail.getAttribute("data-state") === job.state && job.state !== "active") return;
  detail.innerHTML = job.html;
  detail.setAttribute("data-state", job.state);
}

function connect() {
  var url = document.body.getAttribute("data-events");
  var status = document.querySelector("[data-live-status]");
  if (!url || !window.EventSource) return;
  var source = new EventSource(url);
  source.addEventListener("open", function () { if (status) status.textContent = "live"; });
  source.addEventListener("error", function () { if (status) status.textContent = "reconnecting"; });
  source.addEventListener("overview", function (e) { updateOverview(JSON.parse(e.data)); });
  source.addEventListener("job", function (e) { updateJob(JSON.parse(e.data)); });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-json]").forEach(checkJson);
  connect();
});
