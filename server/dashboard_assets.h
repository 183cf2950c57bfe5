// The dashboard's files (server/dashboard/: the page, its script and style, and Debian's
// Chart.js), embedded in the binary at build time by server/dashboard/embed.cmake.
#ifndef PEAKNAS_SERVER_DASHBOARD_ASSETS_H_
#define PEAKNAS_SERVER_DASHBOARD_ASSETS_H_

#include <string_view>
#include <vector>

namespace peaknas::server {

struct DashboardAsset {
  std::string_view name;  // "index.html", "app.js", "chart.js", ...
  std::string_view content_type;
  std::string_view data;
};

const std::vector<DashboardAsset>& DashboardAssets();

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_DASHBOARD_ASSETS_H_
