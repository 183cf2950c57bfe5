// node --test server/dashboard/logic_test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";

import { applyEvent, formatBytes, formatDb, formatSeconds, jobView, pageState, paretoFront,
         stateName, trialPoint, trialsCsv } from "./logic.js";

test("bytes in binary units", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes("67108864"), "64.0 MiB");  // int64 arrives as a string
  assert.equal(formatBytes(1.5 * 2 ** 30), "1.50 GiB");
  assert.equal(formatBytes(300 * 2 ** 20), "300 MiB");
  assert.equal(formatBytes(undefined), "-");
});

test("decibels and seconds", () => {
  assert.equal(formatDb(5.456, true), "+5.46 dB");
  assert.equal(formatDb(-0.5, true), "-0.50 dB");
  assert.equal(formatDb(31.2), "31.20 dB");
  assert.equal(formatSeconds(0.85), "850 ms");
  assert.equal(formatSeconds(12.34), "12.3 s");
  assert.equal(formatSeconds(250), "4 min 10 s");
  assert.equal(stateName("TRIAL_STATE_SUCCEEDED"), "succeeded");
  assert.equal(stateName("JOB_STATE_RUNNING"), "running");
});

test("the Pareto front keeps what nothing beats on peak, gain and latency", () => {
  const p = (id, peak, gain, latency) => ({ id, peak, gain, latency });
  const points = [p("a", 10, 5, 1), p("b", 20, 6, 1), p("c", 20, 4, 1), p("d", 5, 5, 2),
                  p("e", 10, 5, 1)];
  // c is beaten by b (same peak, more gain); a and e tie and both stay; d is cheaper but slower.
  assert.deepEqual(paretoFront(points).map((x) => x.id), ["a", "b", "d", "e"]);
  // A missing latency is the worst latency.
  assert.deepEqual(paretoFront([p("x", 10, 5, NaN), p("y", 10, 5, 3)]).map((x) => x.id), ["y"]);
});

test("a job view splits trials by the budget and the front", () => {
  const trial = (id, state, peak, psnr, extra = {}) => ({
    id, state: `TRIAL_STATE_${state}`, predictedInferencePeakBytes: String(peak),
    predictedLatency100mpS: 1,
    metrics: psnr === undefined ? undefined : { psnr, noisyPsnr: 20 },
    ...extra,
  });
  const job = { spec: { budget: { bytes: "1000", mode: "BUDGET_MODE_INFERENCE" } } };
  const view = jobView(job, [
    trial("t-1", "SUCCEEDED", 400, 25),
    trial("t-2", "SUCCEEDED", 800, 27),
    trial("t-3", "SUCCEEDED", 900, 26),   // dominated by t-2
    trial("t-4", "REJECTED", 5000, undefined, { reason: "over budget" }),
    trial("t-5", "SUCCEEDED", 1500, 30, { lineage: { overBudget: true } }),  // an ancestor
    trial("t-6", "PENDING", 300, undefined),
  ]);
  assert.equal(view.budget, 1000);
  assert.deepEqual(view.points.map((p) => p.id), ["t-1", "t-2", "t-3", "t-4", "t-5", "t-6"]);
  assert.deepEqual(view.front.map((p) => p.id), ["t-1", "t-2"]);
  assert.deepEqual(view.dominated.map((p) => p.id), ["t-3", "t-5"]);
  assert.deepEqual(view.rejected.map((p) => p.id), ["t-4"]);
  assert.equal(view.best.id, "t-2");
  assert.equal(view.best.gain, 7);
  assert.deepEqual(view.counts, { succeeded: 4, rejected: 1, pending: 1 });
  // The training budget reads the training peak.
  const training = trialPoint({ id: "t", predictedTrainPeakBytes: "7", predictedInferencePeakBytes: "3" },
                              "BUDGET_MODE_TRAINING");
  assert.equal(training.peak, 7);
});

test("CSV quotes what needs quoting", () => {
  const csv = trialsCsv([{ id: "t-1", state: "rejected", peak: 5, gain: NaN, latency: NaN,
                           reason: 'over "budget", by 3' }]);
  assert.equal(csv, 'trial,state,peak_bytes,psnr_gain_db,latency_100mp_s,reason\n' +
                    't-1,rejected,5,,,"over ""budget"", by 3"\n');
});

test("events fold into the page's state without refetching", () => {
  const job = { id: "j-1", state: "JOB_STATE_RUNNING" };
  const state = pageState(job, [{ id: "t-1", state: "TRIAL_STATE_PENDING",
                                  architecture: { levels: 2 } }],
                          { version: "0" }, []);
  applyEvent(state, { trialStarted: { trial: { id: "t-1", state: "TRIAL_STATE_RUNNING" } } });
  applyEvent(state, { trialProgress: { trialId: "t-1", step: 5, steps: 10 } });
  assert.deepEqual(state.progress.get("t-1"), { step: 5, steps: 10 });
  applyEvent(state, { trialFinished: { trial: { id: "t-1", state: "TRIAL_STATE_SUCCEEDED",
                                                metrics: { psnr: 30 } } } });
  const t1 = state.trials.get("t-1");
  assert.equal(t1.state, "TRIAL_STATE_SUCCEEDED");
  assert.deepEqual(t1.architecture, { levels: 2 });  // kept: the event does not carry it
  assert.equal(state.progress.has("t-1"), false);
  applyEvent(state, { trialRejected: { trial: { id: "t-2", state: "TRIAL_STATE_REJECTED" } } });
  assert.equal(state.trials.size, 2);
  const frontier = { version: "1", hypervolume: 2.5, points: [{ trialId: "t-1" }] };
  applyEvent(state, { frontierChanged: { frontier } });
  applyEvent(state, { frontierChanged: { frontier } });  // a repeat changes nothing
  assert.deepEqual(state.history, [{ version: 1, hypervolume: 2.5, trialsFinished: 1,
                                     frontierSize: 1 }]);
  applyEvent(state, { jobFinished: { job: { id: "j-1", state: "JOB_STATE_SUCCEEDED" } } });
  assert.equal(state.job.state, "JOB_STATE_SUCCEEDED");
});
