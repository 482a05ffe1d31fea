// Catch2 for the test files of binaries that link LibTorch. LibTorch's glog defines a CHECK macro
// that silently replaces Catch2's (a failing CHECK would then abort the whole binary instead of
// being reported). This header pulls in glog's macros first, then Catch2, then puts Catch2's CHECK
// back. It deliberately has no include guard: in a unity build several test files share one
// translation unit, and each file that includes this header gets Catch2's CHECK again.
#include <c10/util/Logging.h>

#include <catch2/catch.hpp>

#undef CHECK
#define CHECK(...) \
  INTERNAL_CATCH_TEST("CHECK", Catch::ResultDisposition::ContinueOnFailure, __VA_ARGS__)
