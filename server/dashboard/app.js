// The dashboard page: a job list, and a job page with its Pareto front against the budget,
// live over Server-Sent Events (/v1/jobs/{id}/events). `?live=0` turns the live stream off
// (headless renders, which wait for the network to go quiet).
import { applyEvent, formatBytes, formatDb, formatSeconds, jobView, pageState, stateName,
         trialsCsv } from "./logic.js";

const main = document.getElementById("main");
const liveDot = document.getElementById("live");
const live = new URLSearchParams(location.search).get("live") !== "0";
let source = null;   // the job page's EventSource
let state = null;    // the job page's data, kept current by its events (logic.js pageState)
let shownFilter = "all";
let chart = null;
let historyChart = null;
let pollTimer = null;

async function api(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.message ?? response.statusText);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function stop() {
  if (source) source.close();
  source = null;
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
  if (chart) chart.destroy();
  chart = null;
  if (historyChart) historyChart.destroy();
  historyChart = null;
  liveDot.classList.remove("on");
}

// --- The job list ------------------------------------------------------------------------------

async function showJobs() {
  const { jobs = [] } = await api("/v1/jobs?page_size=1000");
  const rows = jobs.map((job) => {
    const c = job.counts ?? {};
    const done = (c.succeeded ?? 0) + (c.failed ?? 0);
    const open = () => { location.hash = `#/jobs/${job.id}`; };
    return el("tr", { class: "link", tabindex: "0", "data-job": job.id, onclick: open,
                      onkeydown: (e) => { if (e.key === "Enter") open(); } },
      el("td", {}, job.id), el("td", {}, job.spec?.name ?? ""),
      el("td", {}, el("span", { class: `state ${stateName(job.state)}` }, stateName(job.state))),
      el("td", { class: "num" }, `${done}/${job.spec?.trials ?? 0}`),
      el("td", { class: "num" }, c.rejected ?? 0),
      el("td", { class: "num" }, formatBytes(job.spec?.budget?.bytes)),
      el("td", {}, String(job.spec?.strategy ?? "").replace(/^STRATEGY_/, "").toLowerCase()));
  });
  main.replaceChildren(
    el("h1", {}, "Jobs"),
    jobs.length === 0
      ? el("p", { class: "muted" }, "No job yet: submit one with peaknas submit, or peaknas run.")
      : el("table", {},
          el("thead", {}, el("tr", {}, el("th", {}, "job"), el("th", {}, "name"),
            el("th", {}, "state"), el("th", { class: "num" }, "trained"),
            el("th", { class: "num" }, "rejected"), el("th", { class: "num" }, "budget"),
            el("th", {}, "strategy"))),
          el("tbody", {}, ...rows)));
}

// --- A job -------------------------------------------------------------------------------------

function card(label, value, id) {
  return el("div", { class: "card" }, el("div", { class: "label" }, label),
            el("div", { class: "value", id }, value));
}

function drawChart(canvas, view) {
  const mib = (b) => b / 2 ** 20;
  const xy = (p) => ({ x: mib(p.peak), y: p.gain, id: p.id });
  const gains = [...view.front, ...view.dominated].map((p) => p.gain).filter(Number.isFinite);
  const low = Math.min(0, ...gains);
  const high = Math.max(1, ...gains);
  const datasets = [
    { label: "frontier", data: view.front.map(xy), showLine: true, stepped: "before",
      borderColor: "#2e6bd6", backgroundColor: "#2e6bd6", pointRadius: 5 },
    { label: "dominated", data: view.dominated.map(xy), backgroundColor: "rgba(102,112,133,.35)",
      pointRadius: 4 },
    { label: "rejected by the cost model (never trained)",
      data: view.rejected.map((p) => ({ x: mib(p.peak), y: low, id: p.id })),
      pointStyle: "crossRot", pointRadius: 6, borderColor: "#b42318", backgroundColor: "#b42318" },
  ];
  if (view.budget > 0) {
    datasets.push({ label: `budget ${formatBytes(view.budget)}`, showLine: true, pointRadius: 0,
                    borderColor: "#b54708", borderDash: [6, 4],
                    data: [{ x: mib(view.budget), y: low }, { x: mib(view.budget), y: high }] });
  }
  if (typeof Chart === "undefined") return null;  // the page still shows the tables
  return new Chart(canvas, {
    type: "scatter",
    data: { datasets },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: { x: { type: "logarithmic", title: { display: true, text: "predicted peak (MiB)" } },
                y: { title: { display: true, text: "PSNR gain over the noisy input (dB)" } } },
      plugins: { tooltip: { callbacks: { label: (c) =>
        `${c.raw.id ?? ""} ${c.raw.x.toFixed(1)} MiB, ${formatDb(c.raw.y, true)}` } } },
    },
  });
}

// Fetches the job once; its events keep it current from then on. Returns the log's last
// sequence, where the live stream starts (the fetches that follow already include it).
async function loadJob(id) {
  const { points: history = [], lastSequence = 0 } = await api(`/v1/jobs/${id}/hypervolume`);
  const [{ job }, { trials = [] }, { frontier = {} }] = await Promise.all([
    api(`/v1/jobs/${id}`), api(`/v1/jobs/${id}/trials?page_size=10000`),
    api(`/v1/jobs/${id}/frontier`)]);
  state = pageState(job, trials, frontier, history);
  return lastSequence;
}

function showJob(id) {
  const { job, frontier, history } = state;
  const trials = [...state.trials.values()];
  const view = jobView(job, trials);
  const points = view.points;
  const frontIds = new Set(view.front.map((p) => p.id));
  const filter = el("select", { id: "filter", "aria-label": "show trials" },
    ...["all", "frontier", "succeeded", "rejected", "failed", "pending", "running"]
      .map((s) => el("option", { value: s }, s)));
  filter.value = shownFilter;
  const tbody = el("tbody");
  const fill = () => {
    const f = filter.value;
    tbody.replaceChildren(...points
      .filter((p) => f === "all" || (f === "frontier" ? frontIds.has(p.id) : p.state === f))
      .map((p) => el("tr", frontIds.has(p.id) ? { "data-front": "1", "data-trial": p.id }
                                               : { "data-trial": p.id },
        el("td", {}, p.id + (frontIds.has(p.id) ? " ★" : "")),
        el("td", {}, el("span", { class: `state ${p.state}` }, p.state)),
        el("td", { class: "num" }, formatBytes(p.peak)),
        el("td", { class: "num" }, formatDb(p.gain, true)),
        el("td", { class: "num" }, formatSeconds(p.latency)),
        el("td", {}, p.hasModel
          ? el("a", { href: `/v1/jobs/${id}/trials/${p.id}/model`, download: `${p.id}.pt` }, "model")
          : ""),
        el("td", { class: "muted" }, p.reason))));
  };
  filter.addEventListener("change", () => { shownFilter = filter.value; fill(); });
  fill();
  const csv = el("button", { onclick: () => {
    const a = el("a", { href: URL.createObjectURL(new Blob([trialsCsv(points)], { type: "text/csv" })),
                        download: `${id}-trials.csv` });
    a.click();
  } }, "CSV");
  const historyCanvas = el("canvas", { id: "history", role: "img",
    "aria-label": `hypervolume of ${id} at ${history.length} frontier versions` });
  const canvas = el("canvas", { id: "front", role: "img",
    "aria-label": `Pareto front of ${id}: ${view.front.length} points` });
  const c = view.counts;
  main.replaceChildren(
    el("p", {}, el("a", { href: "#/" }, "← jobs")),
    el("h1", {}, `${job.id} · ${job.spec?.name ?? ""} `,
       el("span", { class: `state ${stateName(job.state)}`, id: "job-state" }, stateName(job.state))),
    el("div", { class: "cards" },
      card("budget", formatBytes(view.budget), "budget"),
      card("trained", `${c.succeeded ?? 0}`, "count-succeeded"),
      card("rejected before training", `${c.rejected ?? 0}`, "count-rejected"),
      card("frontier", `${view.front.length} models`, "front-size"),
      card("best gain within budget", view.best ? formatDb(view.best.gain, true) : "-", "best-gain"),
      card("hypervolume", Number(frontier.hypervolume ?? 0).toFixed(3), "hypervolume")),
    el("h2", {}, "Quality against memory"),
    el("div", { class: "chart" }, canvas),
    el("h2", {}, "Hypervolume as trials finish"),
    el("div", { class: "chart small" }, historyCanvas),
    el("h2", {}, "Trials"),
    el("div", { class: "controls" }, filter, csv),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "trial"), el("th", {}, "state"),
      el("th", { class: "num" }, "predicted peak"), el("th", { class: "num" }, "PSNR gain"),
      el("th", { class: "num" }, "100 MP"), el("th", {}, "TorchScript"), el("th", {}, "reason"))),
      tbody));
  if (chart) chart.destroy();
  chart = drawChart(canvas, view);
  if (historyChart) historyChart.destroy();
  historyChart = typeof Chart === "undefined" ? null : new Chart(historyCanvas, {
    type: "line",
    data: { datasets: [{ label: "hypervolume", stepped: "after", borderColor: "#2e6bd6",
                         pointRadius: 2,
                         data: history.map((h) => ({ x: h.trialsFinished, y: h.hypervolume })) }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
               scales: { x: { type: "linear", title: { display: true, text: "trials finished" } },
                         y: { beginAtZero: true, title: { display: true, text: "hypervolume" } } } },
  });
  return job;
}

// Follows the job's events after `after`, folding each into the page's state; redraws at most
// four times a second. EventSource reconnects by itself, resuming after the last event id.
function follow(id, after) {
  if (!live || source) return;
  let pending = null;
  source = new EventSource(`/v1/jobs/${id}/events?after=${after}`);
  source.onopen = () => liveDot.classList.add("on");
  source.onerror = () => liveDot.classList.remove("on");
  source.onmessage = (message) => {
    applyEvent(state, JSON.parse(message.data));
    if (pending) return;
    pending = setTimeout(() => { pending = null; showJob(id); }, 250);
  };
}

function showError(error) {
  main.replaceChildren(el("h1", {}, "Something went wrong"), el("p", {}, String(error.message ?? error)));
}

async function route() {
  stop();
  const match = location.hash.match(/^#\/jobs\/([^/]+)$/);
  try {
    if (match) {
      const after = await loadJob(match[1]);
      showJob(match[1]);
      follow(match[1], after);
    } else {
      await showJobs();
      if (live) pollTimer = setInterval(() => showJobs().catch(showError), 5000);
    }
    document.body.dataset.ready = "1";  // for headless checks: the first render is done
  } catch (error) {
    showError(error);
  }
}

window.addEventListener("hashchange", route);
route();
