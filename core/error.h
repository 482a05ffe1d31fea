// core::Error is formats::Error (formats/error.h): the training core and the LibTorch-free readers
// below it (CSV, JSON records, config.json) report failure with one error type, which worker/ turns
// into an absl::Status at the single place it calls into core/.
#pragma once

#include "formats/error.h"

namespace hpsearch::core {

using formats::Error;
using formats::ErrorCode;
using formats::ErrorCodeName;
using formats::Fail;

}  // namespace hpsearch::core
