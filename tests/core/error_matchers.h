// Test helper for core::Error: runs a callable that must throw one and returns it, so a test can
// assert the code and that the message names the file, tensor or key at fault. Include after
// <catch2/catch.hpp>.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "core/error.h"

namespace hpsearch::testing {

template <typename Fn>
std::optional<core::Error> CatchCoreError(Fn&& fn) {
  try {
    fn();
  } catch (const core::Error& e) {
    return e;
  }
  return std::nullopt;
}

// The message of the core::Error that `fn` throws, after REQUIRE-ing its code.
template <typename Fn>
std::string CoreErrorMessage(Fn&& fn, core::ErrorCode expected_code) {
  std::optional<core::Error> error = CatchCoreError(std::forward<Fn>(fn));
  if (!error) FAIL("no core::Error was thrown");
  REQUIRE(error->code() == expected_code);
  return error->what();
}

// REQUIREs that `expr` throws core::Error with `error_code` and a message containing every one of
// the following string arguments.
#define REQUIRE_CORE_ERROR(expr, error_code, ...)                                      \
  do {                                                                                 \
    auto caught_ = ::hpsearch::testing::CatchCoreError([&] { (void)(expr); });         \
    REQUIRE(caught_.has_value());                                                      \
    INFO("message: " << caught_->what());                                              \
    REQUIRE(::hpsearch::core::ErrorCodeName(caught_->code()) ==                        \
            std::string(::hpsearch::core::ErrorCodeName(error_code)));                 \
    for (const std::string& part_ : std::initializer_list<std::string>{__VA_ARGS__}) { \
      INFO("expected in message: " << part_);                                          \
      REQUIRE(std::string(caught_->what()).find(part_) != std::string::npos);          \
    }                                                                                  \
  } while (false)

}  // namespace hpsearch::testing
