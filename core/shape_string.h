// ShapeString: a tensor shape as error messages print it, "[2, 3]". Header-only, thread-safe.
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace hpsearch::core {

inline std::string ShapeString(c10::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

}  // namespace hpsearch::core
