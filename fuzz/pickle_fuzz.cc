// Fuzz target: the pickle reader (core/pickle.h). Persistent ids resolve, as torch.save's do, to
// storages: ('storage', <typed storage global>, key, location, numel) gives `numel` zeros of the
// storage's dtype (at most 4096; more, or any other id, is a core::Error, as a real checkpoint
// whose storage is missing). So tensors rebuilt from the pickle (views, offsets, strides) are
// checked against a real storage. Any bytes give a value or a core::Error.
#include <cstdint>
#include <sstream>
#include <string>

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/pickle.h"
#include "core/pickle_globals.h"
#include "fuzz/fuzz_util.h"

namespace {

using hpsearch::core::ErrorCode;
using hpsearch::core::PickleValue;
using hpsearch::core::PickleValuePtr;
using Kind = PickleValue::Kind;

PickleValuePtr LoadStorage(const PickleValue& pid) {
  at::ScalarType dtype;
  if (pid.kind != Kind::kTuple || pid.items.size() < 5 || pid.items[0]->kind != Kind::kString ||
      pid.items[0]->text != "storage" || pid.items[1]->kind != Kind::kGlobal ||
      !hpsearch::core::StorageGlobalDtype(pid.items[1]->text, &dtype) ||
      pid.items[4]->kind != Kind::kInt || pid.items[4]->int_value < 0 ||
      pid.items[4]->int_value > 4096) {
    hpsearch::core::Fail(ErrorCode::kDataLoss,
                         "fuzz.pkl: unresolvable persistent id " + pid.Describe());
  }
  auto storage = std::make_shared<PickleValue>();
  storage->kind = Kind::kStorage;
  storage->tensor = at::zeros({pid.items[4]->int_value}, at::TensorOptions().dtype(dtype));
  return storage;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(hpsearch::fuzz::AsText(data, size)));
  try {
    PickleValuePtr value = hpsearch::core::Unpickle(in, size, "fuzz.pkl", LoadStorage);
    if (value == nullptr) std::abort();
    (void)value->Describe();
  } catch (const hpsearch::core::Error&) {
  }
  return 0;
}
