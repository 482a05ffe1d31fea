#include "core/error.h"

#include "core/catch_torch.h"

namespace hpsearch::core {
namespace {

TEST_CASE("Fail throws an Error carrying its code and message", "[core][error]") {
  try {
    Fail(ErrorCode::kDataLoss, "model.safetensors: header truncated");
    FAIL("Fail returned");
  } catch (const Error& e) {
    REQUIRE(e.code() == ErrorCode::kDataLoss);
    REQUIRE(std::string(e.what()) == "model.safetensors: header truncated");
    REQUIRE(std::string(ErrorCodeName(e.code())) == "data loss");
  }
}

}  // namespace
}  // namespace hpsearch::core
