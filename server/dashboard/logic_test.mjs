// node --test server/dashboard/logic_test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";

import { applyEvent, formatBytes, formatDb, formatSeconds, front2d, jobView, latencyColor,
         lineageChain, OBJECTIVE_PAIRS, pageState, paretoFront, stateName, trialFacts, trialPoint,
         trialsCsv, unetSvg } from "./logic.js";

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

test("each objective pair's staircase keeps what nothing beats on those two", () => {
  const p = (id, peak, gain, latency) => ({ id, peak, gain, latency });
  const points = [p("small-slow", 10, 3, 9), p("big-fast", 40, 5, 1), p("mid", 20, 4, 5),
                  p("worse", 30, 3.5, 6), p("no-latency", 5, 2, NaN)];
  const pair = (key) => OBJECTIVE_PAIRS.find((x) => x.key === key);
  assert.deepEqual(front2d(points, pair("peak-gain")).map((x) => x.id),
                   ["no-latency", "small-slow", "mid", "big-fast"]);
  // Latency against gain: big-fast is both fastest and best; the rest lose to it.
  assert.deepEqual(front2d(points, pair("latency-gain")).map((x) => x.id), ["big-fast"]);
  // Peak against latency (both lower is better): the trade-off from small-slow to big-fast.
  assert.deepEqual(front2d(points, pair("peak-latency")).map((x) => x.id),
                   ["small-slow", "mid", "big-fast"]);
});

test("latency colours run from blue (fast) to red (slow)", () => {
  assert.equal(latencyColor(1, 1, 100), "hsl(220, 70%, 45%)");
  assert.equal(latencyColor(100, 1, 100), "hsl(15, 70%, 45%)");
  assert.equal(latencyColor(10, 1, 100), "hsl(118, 70%, 45%)");  // halfway on a log scale
  assert.equal(latencyColor(1000, 1, 100), "hsl(15, 70%, 45%)");  // clamped
  assert.equal(latencyColor(NaN, 1, 100), "hsl(220, 8%, 60%)");
});

test("the U-Net drawing has a box per encoder and decoder level and a skip per level", () => {
  const svg = unetSvg({ levels: 3, widths: [16, 32, 64], encBlocks: [1, 2, 3], decBlocks: [2, 1],
                        skip: "SKIP_KIND_CONCAT", upsample: "UPSAMPLE_KIND_BILINEAR",
                        downsample: "DOWNSAMPLE_KIND_MAX_POOL", activation: "ACTIVATION_KIND_RELU" });
  assert.match(svg, /^<svg /);
  assert.equal((svg.match(/<g class="enc/g) ?? []).length, 3);
  assert.equal((svg.match(/<g class="dec"/g) ?? []).length, 2);
  assert.equal((svg.match(/<line class="skip"/g) ?? []).length, 2);
  assert.equal((svg.match(/class="enc bottleneck"/g) ?? []).length, 1);
  for (const w of ["16 ch", "32 ch", "64 ch", "3× conv3×3"]) assert.ok(svg.includes(w), w);
  assert.ok(svg.includes("down: max pool · up: bilinear · skip: concat · relu"));
  // One level: the bottleneck alone.
  const one = unetSvg({ levels: 1, widths: [8], encBlocks: [1], decBlocks: [] });
  assert.equal((one.match(/<rect/g) ?? []).length, 1);
  assert.equal(unetSvg({ levels: 2, widths: [8] }), "");  // inconsistent: nothing drawn
  assert.equal(unetSvg(undefined), "");
});

test("a trial's facts put predicted beside measured, with the ratio", () => {
  const facts = new Map(trialFacts({
    state: "TRIAL_STATE_SUCCEEDED", predictedInferencePeakBytes: String(64 * 2 ** 20),
    predictedTrainPeakBytes: String(256 * 2 ** 20), predictedLatency100mpS: 12.5,
    metrics: { measuredInferencePeakBytes: String(48 * 2 ** 20), psnr: 33.5, noisyPsnr: 28,
               ssim: 0.91234, steps: 200, trainSeconds: 75, latency100mpS: 9, device: "cpu",
               tiled100mpS: 11, tiled100mpTile: 944, tiled100mpOverlap: 28,
               tiled100mpWindows: "121" },
  }));
  assert.equal(facts.get("inference peak"), "64.0 MiB predicted, 48.0 MiB measured (0.750 of predicted)");
  assert.equal(facts.get("training-step peak"), "256 MiB predicted");
  assert.equal(facts.get("latency of 100 MP"),
               "12.5 s predicted, 11.0 s measured on cpu (121 tiles of 944, overlap 28)");
  assert.equal(facts.get("PSNR"), "33.50 dB (+5.50 dB over the noisy 28.00 dB)");
  assert.equal(facts.get("SSIM"), "0.9123");
  assert.equal(facts.get("training"), "200 steps in 1 min 15 s");
  const rejected = new Map(trialFacts({ state: "TRIAL_STATE_REJECTED", reason: "over budget",
                                        predictedInferencePeakBytes: "1024" }));
  assert.equal(rejected.get("reason"), "over budget");
  assert.equal(rejected.has("PSNR"), false);
});

test("a lineage chain follows parents as far as they are known", () => {
  const trials = new Map([
    ["t-1", { id: "t-1", lineage: { role: "start" } }],
    ["t-3", { id: "t-3", lineage: { parentTrialId: "t-1", role: "level" } }],
    ["t-7", { id: "t-7", lineage: { parentTrialId: "t-3", role: "final" } }],
    ["t-9", { id: "t-9", lineage: { parentTrialId: "t-8", role: "mutation" } }],
  ]);
  assert.deepEqual(lineageChain(trials.get("t-7"), trials),
                   [{ id: "t-1", role: "start" }, { id: "t-3", role: "level" },
                    { id: "t-7", role: "final" }]);
  assert.deepEqual(lineageChain(trials.get("t-9"), trials),
                   [{ id: "t-8", role: "" }, { id: "t-9", role: "mutation" }]);
  assert.deepEqual(lineageChain({ id: "t-2" }, trials), [{ id: "t-2", role: "" }]);
});
