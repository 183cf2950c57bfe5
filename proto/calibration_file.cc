#include "proto/calibration_file.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "proto/convert.h"

namespace peaknas::proto {

StatusOr<v1::Calibration> LoadCalibrationFile(const std::string& path,
                                              const std::string& device_profile) {
  const std::string where = "calibration: " + (path == "-" ? std::string("stdin") : path) + ": ";
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream file(path);
    if (!file) return Status::NotFound(where + "cannot be opened");
    text << file.rdbuf();
  }
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  v1::ListCalibrationsResponse list;
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &list, parse).ok()) {
    v1::Calibration one;
    const auto status = google::protobuf::util::JsonStringToMessage(text.str(), &one, parse);
    if (!status.ok()) {
      std::string message(status.message());
      for (char& c : message) {
        if (c == '\n') c = ' ';
      }
      return Status::InvalidArgument(
          where + "not a calibration list (peaknas calibration --format json): " + message);
    }
    *list.add_calibrations() = std::move(one);
  }
  const v1::Calibration* chosen = NewestCalibration(list.calibrations(), device_profile,
                                                    [](const v1::Calibration&) { return true; });
  if (chosen == nullptr) {
    std::string others;
    for (const v1::Calibration& c : list.calibrations()) {
      others += (others.empty() ? "" : ", ") + c.device_profile();
    }
    return Status::InvalidArgument(where + "no calibration for device profile \"" + device_profile +
                                   "\"" + (others.empty() ? "" : " (it has: " + others + ")"));
  }
  return *chosen;
}

}  // namespace peaknas::proto
