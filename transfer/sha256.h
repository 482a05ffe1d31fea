// SHA-256 as lower-case hex, the checksum artifact transfers carry per file (and the study's data
// hashes). OpenSSL's EVP implementation underneath.
//
// Thread-safety: a Sha256 object is used by one thread at a time; the free functions are
// thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace hpsearch::transfer {

// Incremental hash: Update() any number of times, then HexDigest() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  // The 64 hex digits of everything passed to Update(). REQUIRES: called once.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string Sha256Hex(std::string_view bytes);

// The hash of a file's bytes. NOT_FOUND / DATA_LOSS name the file when it cannot be read.
absl::StatusOr<std::string> FileSha256(const std::string& path);

}  // namespace hpsearch::transfer
