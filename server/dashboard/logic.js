// The dashboard's logic, without the page: what a job's trials become on the screen. Pure
// functions over the API's JSON (protobuf's JSON mapping: lowerCamelCase, 64-bit integers as
// strings), tested with `node --test` (server/dashboard/logic_test.mjs).

// "64.0 MiB", "1.50 GiB", "512 B": binary units, three significant digits.
export function formatBytes(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n)) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${value} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

// "+5.46 dB" for a gain, "31.20 dB" for a level.
export function formatDb(db, signed = false) {
  if (!Number.isFinite(db)) return "-";
  const text = `${db.toFixed(2)} dB`;
  return signed && db > 0 ? `+${text}` : text;
}

// "850 ms", "12.3 s", "4 min 10 s".
export function formatSeconds(s) {
  if (!Number.isFinite(s)) return "-";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// The state without its prefix, in lower case: "TRIAL_STATE_SUCCEEDED" -> "succeeded".
export function stateName(state) {
  return String(state ?? "").replace(/^(JOB|TRIAL)_STATE_/, "").toLowerCase();
}

// A trial as the page draws it, on the coordinator's objectives: the predicted budgeted peak
// (inference or training, as the job's budget mode says), the PSNR gain over the noisy input,
// and the predicted latency of a 100-megapixel image.
export function trialPoint(trial, budgetMode) {
  const training = budgetMode === "BUDGET_MODE_TRAINING";
  const peak = Number(training ? trial.predictedTrainPeakBytes : trial.predictedInferencePeakBytes);
  const m = trial.metrics ?? {};
  const gain = m.psnr !== undefined && m.noisyPsnr !== undefined ? m.psnr - m.noisyPsnr : NaN;
  return {
    id: trial.id,
    state: stateName(trial.state),
    peak,
    gain,
    psnr: m.psnr ?? NaN,
    latency: Number(trial.predictedLatency100mpS) > 0 ? Number(trial.predictedLatency100mpS) : NaN,
    measuredLatency: Number(m.tiled100mpS) > 0 ? Number(m.tiled100mpS) : NaN,
    overBudgetAncestor: Boolean(trial.lineage?.overBudget),
    hasModel: Boolean(trial.hasArtifact),
    reason: trial.reason ?? "",
  };
}

// The points no other point dominates: lower peak, higher gain, lower latency (a missing
// latency counts as worst). Ties keep both. Input order is kept.
export function paretoFront(points) {
  const lat = (p) => (Number.isFinite(p.latency) ? p.latency : Infinity);
  const dominates = (a, b) =>
    a.peak <= b.peak && a.gain >= b.gain && lat(a) <= lat(b) &&
    (a.peak < b.peak || a.gain > b.gain || lat(a) < lat(b));
  return points.filter((p) => !points.some((q) => q !== p && dominates(q, p)));
}

// What the job page shows of a job and its trials: the points in and over the budget, the
// front among the trained ones within the budget, the rejected candidates at their predicted
// peak, counts and the best gain within the budget.
export function jobView(job, trials) {
  const budget = Number(job.spec?.budget?.bytes ?? 0);
  const mode = job.spec?.budget?.mode;
  const points = trials.map((t) => trialPoint(t, mode));
  const trained = points.filter((p) => p.state === "succeeded" && Number.isFinite(p.gain));
  const within = trained.filter((p) => !p.overBudgetAncestor && (budget === 0 || p.peak <= budget));
  const front = paretoFront(within);
  const frontIds = new Set(front.map((p) => p.id));
  const best = within.reduce((b, p) => (b === null || p.gain > b.gain ? p : b), null);
  const counts = {};
  for (const p of points) counts[p.state] = (counts[p.state] ?? 0) + 1;
  return {
    budget,
    points,  // every trial, in the order given
    front: front.sort((a, b) => a.peak - b.peak),
    dominated: trained.filter((p) => !frontIds.has(p.id)),
    rejected: points.filter((p) => p.state === "rejected"),
    best,
    counts,
  };
}

// Trials as CSV (RFC 4180), the columns the table shows.
export function trialsCsv(points) {
  const field = (v) => {
    const s = String(v ?? "");
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const rows = [["trial", "state", "peak_bytes", "psnr_gain_db", "latency_100mp_s", "reason"]];
  for (const p of points) {
    rows.push([p.id, p.state, p.peak, Number.isFinite(p.gain) ? p.gain.toFixed(4) : "",
               Number.isFinite(p.latency) ? p.latency : "", p.reason]);
  }
  return rows.map((r) => r.map(field).join(",")).join("\n") + "\n";
}

// A job page's live state: the job, its trials by id, the frontier and the hypervolume's
// history. applyEvent folds one event of /v1/jobs/{id}/events (a JobEvent as JSON) into it, so
// the page follows the job without fetching its trials again. Events may repeat what a fetch
// already gave: each is merged, not added.
export function pageState(job, trials, frontier, history) {
  return { job, trials: new Map(trials.map((t) => [t.id, t])), frontier, history: [...history],
           progress: new Map() };
}

export function applyEvent(state, event) {
  const merge = (trial) => state.trials.set(trial.id, { ...(state.trials.get(trial.id) ?? {}), ...trial });
  if (event.trialStarted) merge(event.trialStarted.trial);
  if (event.trialRejected) merge(event.trialRejected.trial);
  if (event.trialFinished) {
    merge(event.trialFinished.trial);
    state.progress.delete(event.trialFinished.trial.id);
  }
  if (event.trialProgress) {
    const p = event.trialProgress;
    state.progress.set(p.trialId, { step: p.step, steps: p.steps });
  }
  if (event.frontierChanged) {
    const f = event.frontierChanged.frontier;
    if (Number(f.version) > Number(state.frontier?.version ?? 0)) {
      state.frontier = f;
      const finished = [...state.trials.values()].filter(
        (t) => t.state === "TRIAL_STATE_SUCCEEDED" || t.state === "TRIAL_STATE_FAILED").length;
      state.history.push({ version: Number(f.version), hypervolume: f.hypervolume ?? 0,
                           trialsFinished: finished, frontierSize: (f.points ?? []).length });
    }
  }
  if (event.jobFinished) state.job = { ...state.job, ...event.jobFinished.job };
  return state;
}

// --- Objective pairs ---------------------------------------------------------------------------

// The pictures the job page offers: two of the three objectives at a time. `better` says which
// way each axis improves.
export const OBJECTIVE_PAIRS = [
  { key: "peak-gain", x: "peak", y: "gain", xLabel: "predicted peak (MiB)",
    yLabel: "PSNR gain over the noisy input (dB)", xBetter: "lower", yBetter: "higher",
    xLog: true },
  { key: "latency-gain", x: "latency", y: "gain", xLabel: "latency of 100 MP (s)",
    yLabel: "PSNR gain over the noisy input (dB)", xBetter: "lower", yBetter: "higher",
    xLog: true },
  { key: "peak-latency", x: "peak", y: "latency", xLabel: "predicted peak (MiB)",
    yLabel: "latency of 100 MP (s)", xBetter: "lower", yBetter: "lower", xLog: true },
];

// The points no other point beats on the pair's two objectives (what the chart's staircase
// joins), sorted along x. Points missing either value are left out.
export function front2d(points, pair) {
  const ok = points.filter((p) => Number.isFinite(p[pair.x]) && Number.isFinite(p[pair.y]));
  const better = (a, b, key, way) => (way === "lower" ? a[key] < b[key] : a[key] > b[key]);
  const noWorse = (a, b, key, way) => (way === "lower" ? a[key] <= b[key] : a[key] >= b[key]);
  const dominates = (a, b) =>
    noWorse(a, b, pair.x, pair.xBetter) && noWorse(a, b, pair.y, pair.yBetter) &&
    (better(a, b, pair.x, pair.xBetter) || better(a, b, pair.y, pair.yBetter));
  return ok.filter((p) => !ok.some((q) => q !== p && dominates(q, p)))
    .sort((a, b) => a[pair.x] - b[pair.x]);
}

// A colour for a latency between `lo` (fast: blue) and `hi` (slow: red), on a log scale; grey
// when the latency is unknown.
export function latencyColor(latency, lo, hi) {
  if (!Number.isFinite(latency) || latency <= 0) return "hsl(220, 8%, 60%)";
  const t = hi > lo && lo > 0
    ? Math.min(1, Math.max(0, Math.log(latency / lo) / Math.log(hi / lo))) : 0;
  return `hsl(${Math.round(220 - 205 * t)}, 70%, 45%)`;
}

// --- Trial detail ------------------------------------------------------------------------------

function escapeXml(s) {
  return String(s).replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// "DOWNSAMPLE_KIND_MAX_POOL" -> "max pool".
const kindName = (v, prefix) => String(v ?? "").replace(prefix, "").replace(/_/g, " ").toLowerCase();

// A drawing of the U-Net (SVG text): the encoder down the left, the bottleneck at the bottom,
// the decoder up the right, one box per level sized by its width (labelled with the channels
// and conv blocks), the skips across (concat or add), the sampling kinds on the arrows.
export function unetSvg(arch) {
  const levels = Number(arch?.levels ?? 0);
  const widths = (arch?.widths ?? []).map(Number);
  const enc = (arch?.encBlocks ?? []).map(Number);
  const dec = (arch?.decBlocks ?? []).map(Number);
  if (levels < 1 || widths.length !== levels) return "";
  const skip = kindName(arch.skip, "SKIP_KIND_");
  const up = kindName(arch.upsample, "UPSAMPLE_KIND_");
  const down = kindName(arch.downsample, "DOWNSAMPLE_KIND_");
  const act = kindName(arch.activation, "ACTIVATION_KIND_");
  const rowH = 46;
  const top = 22;
  const width = 520;
  const height = top + (levels - 1) * rowH + 36;
  const maxW = Math.max(...widths);
  const boxW = (w) => 44 + 66 * Math.sqrt(w / maxW);  // area grows with the channels
  const parts = [];
  const box = (cx, y, w, blocks, cls, label) => {
    const bw = boxW(w);
    parts.push(`<g class="${cls}" data-level="${label}"><rect x="${(cx - bw / 2).toFixed(1)}" ` +
      `y="${y}" width="${bw.toFixed(1)}" height="28" rx="4"/>` +
      `<text x="${cx}" y="${y + 13}">${w} ch</text>` +
      `<text class="small" x="${cx}" y="${y + 24}">${blocks}× conv3×3</text></g>`);
  };
  // Each level's row; the deepest level is the bottleneck, in the middle.
  for (let l = 0; l < levels; l += 1) {
    const y = top + l * rowH;
    const indent = 36 * l;
    if (l === levels - 1) {
      box(width / 2, y, widths[l], enc[l] ?? "?", "enc bottleneck", l);
      continue;
    }
    const left = 80 + indent;
    const right = width - 80 - indent;
    box(left, y, widths[l], enc[l] ?? "?", "enc", l);
    box(right, y, widths[l], dec[l] ?? "?", "dec", l);
    parts.push(`<line class="skip" x1="${left + boxW(widths[l]) / 2}" y1="${y + 14}" ` +
      `x2="${right - boxW(widths[l]) / 2}" y2="${y + 14}"/>` +
      `<text class="small skip-label" x="${width / 2}" y="${y + 10}">${escapeXml(skip)}</text>`);
    // Down to the next level on the left, up from it on the right.
    const nextLeft = l + 1 === levels - 1 ? width / 2 : 80 + 36 * (l + 1);
    const nextRight = l + 1 === levels - 1 ? width / 2 : width - 80 - 36 * (l + 1);
    parts.push(`<line class="down" x1="${left}" y1="${y + 28}" x2="${nextLeft}" y2="${y + rowH}"/>`);
    parts.push(`<line class="up" x1="${nextRight}" y1="${y + rowH}" x2="${right}" y2="${y + 28}"/>`);
  }
  const legend = `${levels} level${levels > 1 ? "s" : ""} · down: ${escapeXml(down)} · ` +
    `up: ${escapeXml(up)} · skip: ${escapeXml(skip)} · ${escapeXml(act)}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="unet" viewBox="0 0 ${width} ${height}" ` +
    `role="img" aria-label="U-Net: ${legend}"><text class="legend" x="${width / 2}" y="12">` +
    `${legend}</text>${parts.join("")}</svg>`;
}

// What the detail panel lists of a trial: label/value rows with units, predicted beside
// measured, ratios where both are known.
export function trialFacts(trial) {
  const m = trial.metrics ?? {};
  const rows = [];
  const ratio = (measured, predicted) =>
    Number(measured) > 0 && Number(predicted) > 0
      ? ` (${(Number(measured) / Number(predicted)).toFixed(3)} of predicted)` : "";
  rows.push(["state", stateName(trial.state)]);
  if (trial.reason) rows.push(["reason", trial.reason]);
  rows.push(["inference peak", `${formatBytes(trial.predictedInferencePeakBytes)} predicted` +
    (Number(m.measuredInferencePeakBytes) > 0
      ? `, ${formatBytes(m.measuredInferencePeakBytes)} measured` +
        ratio(m.measuredInferencePeakBytes, trial.predictedInferencePeakBytes) : "")]);
  rows.push(["training-step peak", `${formatBytes(trial.predictedTrainPeakBytes)} predicted` +
    (Number(m.measuredTrainPeakBytes) > 0
      ? `, ${formatBytes(m.measuredTrainPeakBytes)} measured` +
        ratio(m.measuredTrainPeakBytes, trial.predictedTrainPeakBytes) : "")]);
  if (Number(m.processInferencePeakBytes) > 0) {
    rows.push(["process peak (inference)", formatBytes(m.processInferencePeakBytes)]);
  }
  rows.push(["latency of 100 MP", `${formatSeconds(Number(trial.predictedLatency100mpS))} ` +
    "predicted" + (Number(m.tiled100mpS) > 0
      ? `, ${formatSeconds(Number(m.tiled100mpS))} measured on ${m.device || "the worker"} ` +
        `(${m.tiled100mpWindows} tiles of ${m.tiled100mpTile}, overlap ${m.tiled100mpOverlap})`
      : "")]);
  if (m.psnr !== undefined) {
    rows.push(["PSNR", `${formatDb(m.psnr)} (${formatDb(m.psnr - (m.noisyPsnr ?? 0), true)} ` +
      `over the noisy ${formatDb(m.noisyPsnr ?? 0)})`]);
    rows.push(["SSIM", Number(m.ssim ?? 0).toFixed(4)]);
    rows.push(["training", `${m.steps ?? 0} steps in ${formatSeconds(Number(m.trainSeconds ?? 0))}`]);
  }
  return rows;
}

// The trial's ancestors, oldest first, then the trial: [{id, role}], following parent ids
// through `trials` (a Map by id) as far as they are known.
export function lineageChain(trial, trials) {
  const chain = [];
  const seen = new Set();
  for (let t = trial; t && !seen.has(t.id); t = trials.get(t.lineage?.parentTrialId)) {
    seen.add(t.id);
    chain.unshift({ id: t.id, role: t.lineage?.role ?? "" });
    if (!t.lineage?.parentTrialId) break;
    if (!trials.has(t.lineage.parentTrialId)) {
      chain.unshift({ id: t.lineage.parentTrialId, role: "" });
      break;
    }
  }
  return chain;
}
