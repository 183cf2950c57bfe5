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
    measuredLatency: m.latency100mpS ?? NaN,
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
