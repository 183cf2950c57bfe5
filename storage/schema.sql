-- peaknas coordinator database: every migration, in order. storage/sqlite_store.cc splits this
-- file at the "-- @migration N" lines and runs step N, in one transaction, on a database whose
-- user_version is N-1. Append steps; never edit one that has shipped.
-- Times are integer milliseconds since the Unix epoch, supplied by the caller.
-- arch_hash is the 64-bit FNV-1a hash of the canonical architecture JSON, stored as the
-- signed 64-bit integer with the same bits.

-- @migration 1

CREATE TABLE jobs (
  id          INTEGER PRIMARY KEY,
  spec        TEXT    NOT NULL,
  state       TEXT    NOT NULL
              CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
  created_ms  INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL,
  error       TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE workers (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL,
  device        TEXT    NOT NULL,
  memory_bytes  INTEGER NOT NULL,
  registered_ms INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL
);

CREATE TABLE trials (
  id                             INTEGER PRIMARY KEY,
  job_id                         INTEGER NOT NULL REFERENCES jobs(id),
  architecture                   TEXT    NOT NULL,
  arch_hash                      INTEGER NOT NULL,
  state                          TEXT    NOT NULL
      CHECK (state IN ('pending', 'rejected', 'leased', 'succeeded', 'failed')),
  predicted_inference_peak_bytes INTEGER NOT NULL,
  predicted_train_peak_bytes     INTEGER NOT NULL,
  reason                         TEXT    NOT NULL DEFAULT '',  -- rejection or failure reason
  attempts                       INTEGER NOT NULL DEFAULT 0,   -- leases granted so far
  lease_id                       TEXT,                         -- set while leased
  fencing_token                  INTEGER NOT NULL DEFAULT 0,   -- +1 on every lease
  lease_deadline_ms              INTEGER,                      -- set while leased
  worker_id                      INTEGER REFERENCES workers(id),
  created_ms                     INTEGER NOT NULL,
  updated_ms                     INTEGER NOT NULL,
  UNIQUE (job_id, arch_hash)
);
CREATE INDEX trials_by_state ON trials (state, id);
CREATE INDEX trials_by_job_state ON trials (job_id, state, id);
CREATE UNIQUE INDEX trials_by_lease ON trials (lease_id) WHERE lease_id IS NOT NULL;

CREATE TABLE metrics (
  trial_id                      INTEGER PRIMARY KEY REFERENCES trials(id),
  psnr                          REAL    NOT NULL,
  ssim                          REAL    NOT NULL,
  noisy_psnr                    REAL    NOT NULL,
  measured_inference_peak_bytes INTEGER NOT NULL,
  measured_train_peak_bytes     INTEGER NOT NULL,
  latency_100mp_s               REAL    NOT NULL,  -- estimated, job's target device profile
  measured_latency_ms           REAL    NOT NULL,  -- measured on the worker's device
  steps_per_second              REAL    NOT NULL,
  device                        TEXT    NOT NULL DEFAULT '',
  report_json                   TEXT    NOT NULL DEFAULT '{}',
  created_ms                    INTEGER NOT NULL
);

CREATE TABLE frontier_snapshots (
  job_id       INTEGER NOT NULL REFERENCES jobs(id),
  version      INTEGER NOT NULL,
  hypervolume  REAL    NOT NULL,
  members_json TEXT    NOT NULL,
  created_ms   INTEGER NOT NULL,
  PRIMARY KEY (job_id, version)
);

CREATE TABLE artifacts (
  id          INTEGER PRIMARY KEY,
  trial_id    INTEGER NOT NULL REFERENCES trials(id),
  path        TEXT    NOT NULL,
  size_bytes  INTEGER NOT NULL,
  sha256      TEXT    NOT NULL,
  created_ms  INTEGER NOT NULL
);
CREATE INDEX artifacts_by_trial ON artifacts (trial_id);

-- @migration 2
-- Worker capabilities, so trials go only to workers that can run them; the predicted latency
-- stored with each candidate (the coordinator computed it when it proposed the trial); and the
-- jobs' event logs, which WatchJob replays and follows.
ALTER TABLE workers ADD COLUMN datasets TEXT NOT NULL DEFAULT '';  -- names, comma-separated
ALTER TABLE workers ADD COLUMN dtypes   TEXT NOT NULL DEFAULT '';  -- "fp16,bf16"; '' = fp32
ALTER TABLE trials ADD COLUMN predicted_latency_100mp_s REAL NOT NULL DEFAULT 0;
CREATE TABLE events (
  job_id     INTEGER NOT NULL REFERENCES jobs(id),
  sequence   INTEGER NOT NULL,  -- 1, 2, ... per job
  created_ms INTEGER NOT NULL,
  event      BLOB    NOT NULL,  -- a peaknas.v1.JobEvent, protobuf binary
  PRIMARY KEY (job_id, sequence)
) WITHOUT ROWID;

-- @migration 3
-- Weight inheritance: a trial may start from a trained parent's weights (the pruning
-- strategy). lineage is the coordinator's record of where the trial comes from (a
-- peaknas.v1.Lineage as JSON; '' for a trial trained from scratch). From this version on,
-- arch_hash holds the candidate's identity: the architecture's hash for a trial trained from
-- scratch, a hash of the architecture and its lineage for an inheriting one, so a pruned child
-- is not merged with the same architecture trained from scratch.
ALTER TABLE trials ADD COLUMN parent_trial_id INTEGER REFERENCES trials(id);
ALTER TABLE trials ADD COLUMN lineage TEXT NOT NULL DEFAULT '';
-- 1: admitted although over an inference budget (a pruning ancestor; never on the frontier).
ALTER TABLE trials ADD COLUMN over_budget INTEGER NOT NULL DEFAULT 0;

-- @migration 4
-- Trial counts per job and state, kept by triggers in the same transaction as every change to
-- trials, so a job's counts (GetJob, /metrics) cost one indexed read instead of a scan of its
-- trials. updated_ms is the latest updated_ms any trial had while in that state (a trial's
-- updated_ms only grows, so the job's maximum over the states is its trials' latest change).
CREATE TABLE trial_counts (
  job_id      INTEGER NOT NULL,
  state       TEXT    NOT NULL,
  n           INTEGER NOT NULL,
  over_budget INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL,
  PRIMARY KEY (job_id, state)
) WITHOUT ROWID;
INSERT INTO trial_counts (job_id, state, n, over_budget, updated_ms)
  SELECT job_id, state, COUNT(*), SUM(over_budget), MAX(updated_ms) FROM trials
  GROUP BY job_id, state;
CREATE TRIGGER trial_counts_insert AFTER INSERT ON trials BEGIN
  INSERT INTO trial_counts (job_id, state, n, over_budget, updated_ms)
    VALUES (NEW.job_id, NEW.state, 1, NEW.over_budget, NEW.updated_ms)
    ON CONFLICT (job_id, state) DO UPDATE SET
      n = n + 1, over_budget = over_budget + excluded.over_budget,
      updated_ms = max(updated_ms, excluded.updated_ms);
END;
CREATE TRIGGER trial_counts_update AFTER UPDATE OF state, over_budget, updated_ms ON trials
WHEN OLD.state IS NOT NEW.state OR OLD.over_budget IS NOT NEW.over_budget
     OR OLD.updated_ms IS NOT NEW.updated_ms BEGIN
  UPDATE trial_counts SET n = n - 1, over_budget = over_budget - OLD.over_budget
    WHERE job_id = OLD.job_id AND state = OLD.state;
  INSERT INTO trial_counts (job_id, state, n, over_budget, updated_ms)
    VALUES (NEW.job_id, NEW.state, 1, NEW.over_budget, NEW.updated_ms)
    ON CONFLICT (job_id, state) DO UPDATE SET
      n = n + 1, over_budget = over_budget + excluded.over_budget,
      updated_ms = max(updated_ms, excluded.updated_ms);
END;
CREATE TRIGGER trial_counts_delete AFTER DELETE ON trials BEGIN
  UPDATE trial_counts SET n = n - 1, over_budget = over_budget - OLD.over_budget
    WHERE job_id = OLD.job_id AND state = OLD.state;
END;

-- @migration 5
-- Device-calibration samples: per trial and pass, the worker's cost-model prediction beside
-- what its process (or device) measured, keyed by the worker's device profile and framework
-- version (search/calibration.h fits a line through the newest ones).
CREATE TABLE calibration_samples (
  id              INTEGER PRIMARY KEY,
  device_profile  TEXT    NOT NULL,
  framework       TEXT    NOT NULL,
  pass            TEXT    NOT NULL CHECK (pass IN ('inference', 'training')),
  predicted_bytes INTEGER NOT NULL,
  device_bytes    INTEGER NOT NULL,
  trial_id        INTEGER NOT NULL REFERENCES trials(id),
  created_ms      INTEGER NOT NULL
);
CREATE INDEX calibration_samples_by_key
  ON calibration_samples (device_profile, framework, pass, id);

-- @migration 6
-- Packing trials on shared devices: the least a lease of the trial reserves on a worker's
-- device, in calibrated device bytes of the trial's process (the worker adds its data). 0
-- until a worker stops the trial for going over its reservation; then raised, so the next
-- lease comes with more headroom.
ALTER TABLE trials ADD COLUMN reserve_bytes INTEGER NOT NULL DEFAULT 0;
-- Calibration samples of a third pass, "trial": a whole trial process against the larger of
-- its passes' predictions. SQLite cannot widen a CHECK: the table is rebuilt.
CREATE TABLE calibration_samples_6 (
  id              INTEGER PRIMARY KEY,
  device_profile  TEXT    NOT NULL,
  framework       TEXT    NOT NULL,
  pass            TEXT    NOT NULL CHECK (pass IN ('inference', 'training', 'trial')),
  predicted_bytes INTEGER NOT NULL,
  device_bytes    INTEGER NOT NULL,
  trial_id        INTEGER NOT NULL REFERENCES trials(id),
  created_ms      INTEGER NOT NULL
);
INSERT INTO calibration_samples_6 SELECT * FROM calibration_samples;
DROP TABLE calibration_samples;
ALTER TABLE calibration_samples_6 RENAME TO calibration_samples;
CREATE INDEX calibration_samples_by_key
  ON calibration_samples (device_profile, framework, pass, id);

-- @migration 7
-- Bearer tokens (storage/token_store.h): only each secret's SHA-256 is kept. Once any row
-- exists, every call needs a valid token; a revoked token keeps its row (revoked_ms set), so
-- revoking the last one never reopens the server.
CREATE TABLE tokens (
  id         INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL UNIQUE,
  role       TEXT    NOT NULL CHECK (role IN ('reader', 'submitter', 'worker', 'admin')),
  tenant     TEXT    NOT NULL,
  sha256     TEXT    NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER
);
-- The tenant a job belongs to (its submitter's), and the token a worker registered with; ''
-- on a server without tokens.
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN principal TEXT NOT NULL DEFAULT '';

-- @migration 8
-- The frontier's 100-MP latency as the trial's worker measured it (TrialMetrics.tiled_100mp_s,
-- on the metrics' device), beside the predicted latency_100mp_s; 0 where not measured.
ALTER TABLE metrics ADD COLUMN tiled_100mp_s REAL NOT NULL DEFAULT 0;

-- @migration 9
-- The intra-op threads a worker trains with (RegisterWorkerRequest.threads): on CPU oneDNN's
-- per-thread buffers make a trial's peaks depend on them. 0 = not stated.
ALTER TABLE workers ADD COLUMN threads INTEGER NOT NULL DEFAULT 0;
