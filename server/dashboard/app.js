// The dashboard page: a job list, and a job page with its Pareto front against the budget,
// live over Server-Sent Events (/v1/jobs/{id}/events), and a trial's detail (#/jobs/ID/trials/T:
// the U-Net drawn, predicted beside measured, its lineage, its model). `?live=0` turns the live
// stream off (headless renders, which wait for the network to go quiet).
//
// A coordinator with tokens (server/auth.h) answers 401 until the page has one: it asks for a
// reader token and keeps it in sessionStorage (this tab only), or takes it from the address's
// fragment, "#token=TOKEN" (never sent to the server; removed from the address at once). Every
// request then carries "Authorization: Bearer TOKEN"; the live stream is read with fetch, since
// EventSource cannot send the header, and models are downloaded the same way.
import { applyEvent, formatBytes, formatDb, formatSeconds, front2d, jobView, latencyColor,
         lineageChain, OBJECTIVE_PAIRS, pageState, stateName, trialFacts, trialsCsv,
         unetSvg } from "./logic.js";

const main = document.getElementById("main");
const liveDot = document.getElementById("live");
const live = new URLSearchParams(location.search).get("live") !== "0";
let source = null;   // the job page's EventSource
let state = null;    // the job page's data, kept current by its events (logic.js pageState)
let shownFilter = "all";
let shownPair = "peak-gain";  // OBJECTIVE_PAIRS key of the main chart
let selected = null;          // the trial whose detail is shown
let chart = null;
let historyChart = null;
let pollTimer = null;

const TOKEN_KEY = "peaknas-token";
{
  const handed = location.hash.match(/^#token=([A-Za-z0-9_-]+)$/);
  if (handed) {
    sessionStorage.setItem(TOKEN_KEY, handed[1]);
    history.replaceState(null, "", location.pathname + location.search + "#/");
  }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

class SignInNeeded extends Error {}

async function api(path) {
  const response = await fetch(path, { headers: authHeaders() });
  const body = await response.json();
  if (response.status === 401) throw new SignInNeeded(body.message ?? "a token is needed");
  if (!response.ok) throw new Error(body.message ?? response.statusText);
  return body;
}

// A model link: a plain download without a token; with one, fetched with it and saved.
function modelLink(jobId, trialId, text, attrs = {}) {
  const href = `/v1/jobs/${jobId}/trials/${trialId}/model`;
  return el("a", { ...attrs, href, download: `${trialId}.pt`, onclick: async (e) => {
    if (!sessionStorage.getItem(TOKEN_KEY)) return;
    e.preventDefault();
    const response = await fetch(href, { headers: authHeaders() });
    if (!response.ok) return showError(new Error(`model ${trialId}: HTTP ${response.status}`));
    const a = el("a", { href: URL.createObjectURL(await response.blob()), download: `${trialId}.pt` });
    a.click();
  } }, text);
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
      el("td", { class: "num" }, el("progress", { max: String(job.spec?.trials ?? 0),
                                                 value: String(done) }), ` ${done}/${job.spec?.trials ?? 0}`),
      el("td", { class: "num" }, c.rejected ?? 0),
      el("td", { class: "num" }, job.frontierSize ?? 0),
      el("td", { class: "num" }, Number(job.hypervolume ?? 0).toFixed(3)),
      el("td", { class: "num" }, job.bestPsnr > 0 ? formatDb(job.bestPsnr) : "-"),
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
            el("th", { class: "num" }, "rejected"), el("th", { class: "num" }, "frontier"),
            el("th", { class: "num" }, "hypervolume"),
            el("th", { class: "num" }, "best PSNR within budget"),
            el("th", { class: "num" }, "budget"),
            el("th", {}, "strategy"))),
          el("tbody", {}, ...rows)));
}

// --- A job -------------------------------------------------------------------------------------

function card(label, value, id) {
  return el("div", { class: "card" }, el("div", { class: "label" }, label),
            el("div", { class: "value", id }, value));
}

// The main chart: the pair's two objectives, the trained points coloured by latency (the
// frontier's bold, the dominated faded), the pair's staircase, the budget line and the
// candidates the cost model rejected, drawn at their predicted peak. A click opens a trial.
function drawChart(canvas, view, pair, jobId) {
  const value = (p, key) => (key === "peak" ? p.peak / 2 ** 20 : p[key]);
  const xy = (p) => ({ x: value(p, pair.x), y: value(p, pair.y), id: p.id });
  const has = (p) => Number.isFinite(value(p, pair.x)) && Number.isFinite(value(p, pair.y));
  const trained = [...view.front, ...view.dominated];
  const latencies = trained.map((p) => p.latency).filter((l) => Number.isFinite(l) && l > 0);
  const lo = Math.min(...latencies);
  const hi = Math.max(...latencies);
  const color = (p) => latencyColor(p.latency, lo, hi);
  const ys = trained.filter(has).map((p) => value(p, pair.y));
  const low = pair.y === "gain" ? Math.min(0, ...ys) : Math.min(...ys, Infinity);
  const high = pair.y === "gain" ? Math.max(1, ...ys) : Math.max(...ys, -Infinity);
  const front = view.front.filter(has);
  const dominated = view.dominated.filter(has);
  const within = trained.filter((p) => view.budget === 0 || p.peak <= view.budget);
  const datasets = [
    { label: "frontier (colour: latency, blue fast → red slow)", data: front.map(xy),
      backgroundColor: front.map(color), borderColor: "#1d2433", borderWidth: 1.5,
      pointRadius: 6 },
    { label: `best trade-offs of these two`, data: front2d(within, pair).map(xy), showLine: true,
      stepped: pair.yBetter === "higher" ? "before" : "after", borderColor: "#2e6bd6",
      pointRadius: 0, fill: false },
    { label: "dominated", data: dominated.map(xy),
      backgroundColor: dominated.map((p) => color(p).replace("hsl", "hsla").replace(")", ", .35)")),
      pointRadius: 4 },
  ];
  const rejected = view.rejected.filter((p) => Number.isFinite(value(p, pair.x)));
  if (rejected.length > 0 && Number.isFinite(low)) {
    datasets.push({ label: "rejected by the cost model (never trained)",
      data: rejected.map((p) => ({ x: value(p, pair.x),
                                   y: Number.isFinite(value(p, pair.y)) ? value(p, pair.y) : low,
                                   id: p.id })),
      pointStyle: "crossRot", pointRadius: 6, borderColor: "#b42318", backgroundColor: "#b42318" });
  }
  if (view.budget > 0 && pair.x === "peak" && Number.isFinite(low)) {
    datasets.push({ label: `budget ${formatBytes(view.budget)}`, showLine: true, pointRadius: 0,
                    borderColor: "#b54708", borderDash: [6, 4],
                    data: [{ x: view.budget / 2 ** 20, y: low }, { x: view.budget / 2 ** 20, y: high }] });
  }
  if (typeof Chart === "undefined") return null;  // the page still shows the tables
  const unit = (key, v) => (key === "peak" ? `${v.toFixed(1)} MiB`
    : key === "gain" ? formatDb(v, true) : formatSeconds(v));
  return new Chart(canvas, {
    type: "scatter",
    data: { datasets },
    options: {
      animation: false, maintainAspectRatio: false,
      onClick: (_, elements) => {
        const hit = elements[0];
        const id = hit && datasets[hit.datasetIndex].data[hit.index]?.id;
        if (id) location.hash = `#/jobs/${jobId}/trials/${id}`;
      },
      scales: { x: { type: pair.xLog ? "logarithmic" : "linear",
                     title: { display: true, text: pair.xLabel } },
                y: { title: { display: true, text: pair.yLabel } } },
      plugins: { tooltip: { callbacks: { label: (c) =>
        `${c.raw.id ?? ""} ${unit(pair.x, c.raw.x)}, ${unit(pair.y, c.raw.y)}` } } },
    },
  });
}

// The selected trial's panel: its U-Net, what was predicted beside what was measured, its
// lineage (each ancestor a link) and its model.
function trialDetail(jobId, trialId) {
  const trial = state.trials.get(trialId);
  const close = el("a", { href: `#/jobs/${jobId}`, class: "close", "aria-label": "close" }, "×");
  if (!trial) {
    return el("section", { class: "detail", id: "trial-detail" }, close,
              el("p", {}, `No trial ${trialId} in ${jobId}.`));
  }
  const drawing = el("div", { class: "unet-box" });
  drawing.innerHTML = unetSvg(trial.architecture);  // built from numbers and escaped names
  const facts = el("table", { class: "facts" }, el("tbody", {}, ...trialFacts(trial).map(
    ([label, value]) => el("tr", {}, el("th", {}, label), el("td", {}, value)))));
  const chain = lineageChain(trial, state.trials);
  const lineage = chain.length > 1
    ? el("p", { class: "lineage", id: "lineage" }, "lineage: ", ...chain.flatMap((a, i) => [
        i > 0 ? " → " : "",
        a.id === trial.id ? el("strong", {}, `${a.id}${a.role ? ` (${a.role})` : ""}`)
          : el("a", { href: `#/jobs/${jobId}/trials/${a.id}` }, `${a.id}${a.role ? ` (${a.role})` : ""}`)]))
    : el("p", { class: "muted" }, "trained from scratch");
  return el("section", { class: "detail", id: "trial-detail", "data-detail": trial.id }, close,
    el("h2", {}, `Trial ${trial.id} `,
       el("span", { class: `state ${stateName(trial.state)}` }, stateName(trial.state))),
    trial.hasArtifact
      ? modelLink(jobId, trial.id, "Download the TorchScript model", { class: "button" })
      : "",
    el("div", { class: "detail-body" }, drawing, el("div", {}, facts, lineage)));
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
      .map((p) => el("tr", { ...(frontIds.has(p.id) ? { "data-front": "1" } : {}),
                             "data-trial": p.id, class: "link", tabindex: "0",
                             onclick: () => { location.hash = `#/jobs/${id}/trials/${p.id}`; },
                             onkeydown: (e) => {
                               if (e.key === "Enter") location.hash = `#/jobs/${id}/trials/${p.id}`;
                             } },
        el("td", {}, p.id + (frontIds.has(p.id) ? " ★" : "")),
        el("td", {}, el("span", { class: `state ${p.state}` }, p.state)),
        el("td", { class: "num" }, formatBytes(p.peak)),
        el("td", { class: "num" }, formatDb(p.gain, true)),
        el("td", { class: "num" }, formatSeconds(p.latency)),
        el("td", { class: "num" }, formatSeconds(p.measuredLatency)),
        el("td", {}, p.hasModel ? modelLink(id, p.id, "model") : ""),
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
  const pairSelect = el("select", { id: "pair", "aria-label": "objectives to plot" },
    ...OBJECTIVE_PAIRS.map((p) => el("option", { value: p.key },
      `${p.y === "gain" ? "PSNR gain" : "latency"} against ${p.x === "peak" ? "peak" : "latency"}`)));
  pairSelect.value = shownPair;
  pairSelect.addEventListener("change", () => { shownPair = pairSelect.value; showJob(id); });
  const pair = OBJECTIVE_PAIRS.find((p) => p.key === shownPair) ?? OBJECTIVE_PAIRS[0];
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
    selected ? trialDetail(id, selected) : "",
    el("h2", {}, "The search's trade-offs"),
    el("div", { class: "controls" }, pairSelect,
       el("span", { class: "muted" }, "click a point for the trial")),
    el("div", { class: "chart" }, canvas),
    el("h2", {}, "Hypervolume as trials finish"),
    el("div", { class: "chart small" }, historyCanvas),
    el("h2", {}, "Trials"),
    el("div", { class: "controls" }, filter, csv),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "trial"), el("th", {}, "state"),
      el("th", { class: "num" }, "predicted peak"), el("th", { class: "num" }, "PSNR gain"),
      el("th", { class: "num" }, "100 MP predicted"), el("th", { class: "num" }, "measured"),
      el("th", {}, "TorchScript"), el("th", {}, "reason"))),
      tbody));
  if (chart) chart.destroy();
  chart = drawChart(canvas, view, pair, id);
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
  const onEvent = (data) => {
    applyEvent(state, JSON.parse(data));
    if (pending) return;
    pending = setTimeout(() => { pending = null; showJob(id); }, 250);
  };
  if (sessionStorage.getItem(TOKEN_KEY)) {
    source = followWithToken(id, after, onEvent);
    return;
  }
  source = new EventSource(`/v1/jobs/${id}/events?after=${after}`);
  source.onopen = () => liveDot.classList.add("on");
  source.onerror = () => liveDot.classList.remove("on");
  source.onmessage = (message) => onEvent(message.data);
}

// The event stream read with fetch (which can send the token): "data:" lines of each event,
// resumed after the last "id:" when the connection drops. Returns an object with close().
function followWithToken(id, after, onEvent) {
  const controller = new AbortController();
  let last = after;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(`/v1/jobs/${id}/events?after=${last}`,
                                      { headers: authHeaders(), signal: controller.signal });
        if (!response.ok) break;
        liveDot.classList.add("on");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end; (end = buffer.indexOf("\n\n")) >= 0;) {
            const lines = buffer.slice(0, end).split("\n");
            buffer = buffer.slice(end + 2);
            const seq = lines.find((l) => l.startsWith("id:"));
            if (seq) last = Number(seq.slice(3));
            const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
            if (data.length) onEvent(data.join("\n"));
          }
        }
      } catch (error) {
        if (controller.signal.aborted) break;
      }
      liveDot.classList.remove("on");
      if (state?.job && ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]
        .includes(state.job.state)) break;
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  })();
  return { close: () => controller.abort() };
}

function showError(error) {
  if (error instanceof SignInNeeded) return showSignIn(error.message);
  main.replaceChildren(el("h1", {}, "Something went wrong"), el("p", {}, String(error.message ?? error)));
}

// The coordinator checks callers: a form for a reader (or submitter, or admin) token.
function showSignIn(why) {
  stop();
  const input = el("input", { type: "password", id: "token", autocomplete: "off",
                              placeholder: "pnk_…", "aria-label": "token" });
  const form = el("form", { id: "sign-in", onsubmit: (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    route();
  } }, input, el("button", { type: "submit" }, "Sign in"));
  main.replaceChildren(el("h1", {}, "Sign in"),
    el("p", {}, "This coordinator checks its callers. Paste a token with the reader role (",
       el("code", {}, "peaknas-server token create --role reader"), "); it is kept in this tab only."),
    el("p", { class: "muted" }, why), form);
  document.body.dataset.ready = "1";
}

async function route() {
  const match = location.hash.match(/^#\/jobs\/([^/]+)(?:\/trials\/([^/]+))?$/);
  selected = match?.[2] ?? null;
  if (match && state?.job?.id === match[1] && (source || !live)) {
    showJob(match[1]);  // the same job, another trial: no reload
    if (selected) document.getElementById("trial-detail")?.scrollIntoView({ block: "nearest" });
    return;
  }
  stop();
  state = null;
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
