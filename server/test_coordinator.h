// What the coordinator's tests share (coordinator_test.cc, http_api_test.cc,
// parked_calls_test.cc, service_test.cc): a real coordinator over a real SQLite file, as
// peaknas-server opens it. Header-only; for gtest tests.
#ifndef PEAKNAS_SERVER_TEST_COORDINATOR_H_
#define PEAKNAS_SERVER_TEST_COORDINATOR_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "server/coordinator.h"
#include "storage/sqlite_store.h"

namespace peaknas::server::testing {

// Opens (or creates) the SQLite database at `db_path` and, into `*coordinator`, a coordinator
// over it keeping its artifacts under `artifacts_dir`. A fatal failure, with the store's or the
// coordinator's error, when either cannot be opened: call it under ASSERT_NO_FATAL_FAILURE.
inline void OpenSqliteCoordinator(const std::string& db_path, const std::string& artifacts_dir,
                                  std::unique_ptr<Coordinator>* coordinator,
                                  CoordinatorOptions options = {}) {
  auto store = storage::SqliteStore::Open(db_path, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto opened = Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                  artifacts_dir, std::move(options));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  *coordinator = std::move(opened).value();
}

}  // namespace peaknas::server::testing

#endif  // PEAKNAS_SERVER_TEST_COORDINATOR_H_
