// A device calibration read from a file: what `peaknas calibration --format json` writes (a
// ListCalibrationsResponse) or one Calibration, in protobuf's JSON mapping. For
// `peaknas estimate --calibration` and `peaknas-worker denoise --calibration`.
//
// Thread-safety: a function of the file (and of standard input for "-").
#ifndef PEAKNAS_PROTO_CALIBRATION_FILE_H_
#define PEAKNAS_PROTO_CALIBRATION_FILE_H_

#include <string>

#include "base/status.h"
#include "peaknas/v1/peaknas.pb.h"

namespace peaknas::proto {

// The newest calibration of `device_profile` in the file at `path` ("-": standard input).
// NOT_FOUND when the file cannot be opened; INVALID_ARGUMENT when it is not a calibration (list)
// or has none for the profile (naming the profiles it has). Messages start "calibration: PATH: ".
StatusOr<v1::Calibration> LoadCalibrationFile(const std::string& path,
                                              const std::string& device_profile);

}  // namespace peaknas::proto

#endif  // PEAKNAS_PROTO_CALIBRATION_FILE_H_
