#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <fstream>
#include <sstream>

#include "core/core_test_files.h"
#include "core/error_matchers.h"
#include "core/pickle.h"
#include "core/pickle_globals.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using Kind = PickleValue::Kind;
using namespace std::string_literals;

PickleValuePtr UnpickleBytes(const std::string& bytes, const PersistentLoadFn& load = nullptr) {
  std::istringstream in(bytes);
  return Unpickle(in, bytes.size(), "test.pkl", load);
}

PickleValuePtr UnpickleFile(const std::string& name) {
  std::ifstream in(testing::CheckpointFixtureDir() / name, std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  std::istringstream stream(bytes);
  return Unpickle(stream, bytes.size(), (testing::CheckpointFixtureDir() / name).string(), nullptr);
}

const PickleValue& DictGet(const PickleValue& dict, const std::string& key) {
  for (const auto& [k, v] : dict.entries) {
    if (k->kind == Kind::kString && k->text == key) return *v;
  }
  FAIL("no key " << key);
  throw;
}

TEST_CASE("Unpickle reads Python's values in protocols 2, 4 and 5", "[core][pickle]") {
  for (const char* file : {"values_p2.pkl", "values_p4.pkl", "values_p5.pkl"}) {
    INFO(file);
    PickleValuePtr root = UnpickleFile(file);
    REQUIRE(root->kind == Kind::kDict);
    REQUIRE(root->entries.size() == 14);
    REQUIRE(root->entries[0].first->text == "int");  // insertion order kept
    REQUIRE(DictGet(*root, "int").int_value == 5);
    REQUIRE(DictGet(*root, "neg").int_value == -300);
    REQUIRE(DictGet(*root, "int32").int_value == 2147483647);
    REQUIRE(DictGet(*root, "int64").int_value == -(int64_t{1} << 62));
    const PickleValue& big = DictGet(*root, "big");  // 2**70
    REQUIRE(big.kind == Kind::kBigInt);
    REQUIRE(big.text == std::string("\0\0\0\0\0\0\0\0\x40", 9));
    REQUIRE(DictGet(*root, "float").float_value == 1.5);
    REQUIRE(DictGet(*root, "text").text == "h\xc3\xa9llo");
    REQUIRE(DictGet(*root, "none").kind == Kind::kNone);
    const PickleValue& flags = DictGet(*root, "flags");
    REQUIRE(flags.kind == Kind::kTuple);
    REQUIRE(flags.items.size() == 2);
    REQUIRE(flags.items[0]->bool_value);
    REQUIRE_FALSE(flags.items[1]->bool_value);
    const PickleValue& list = DictGet(*root, "list");
    REQUIRE(list.kind == Kind::kList);
    REQUIRE(list.items.size() == 5);
    REQUIRE(list.items[1]->float_value == 2.25);
    REQUIRE(list.items[2]->text == "x");
    REQUIRE(list.items[3]->kind == Kind::kList);
    REQUIRE(list.items[4]->kind == Kind::kTuple);
    const PickleValue& b = DictGet(DictGet(DictGet(*root, "nested"), "a"), "b");
    REQUIRE(b.items.size() == 1);
    REQUIRE(b.items[0]->int_value == 3);
    REQUIRE(DictGet(*root, "tuple3").items.size() == 3);
    REQUIRE(&DictGet(*root, "shared_a") ==
            &DictGet(*root, "shared_b"));  // one object through the memo
  }
}

TEST_CASE("Unpickle refuses globals outside the allow-list and names them", "[core][pickle]") {
  REQUIRE_CORE_ERROR(UnpickleFile("evil_os_system.pkl"), ErrorCode::kUnsupported,
                     "evil_os_system.pkl", "posix.system", "allow-list");
  REQUIRE_CORE_ERROR(UnpickleFile("evil_eval_p4.pkl"), ErrorCode::kUnsupported, "evil_eval_p4.pkl",
                     "builtins.eval");
  // GLOBAL followed by STOP: refused at the GLOBAL, before any call could happen.
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02"
                                   "cos\nsystem\n."),
                     ErrorCode::kUnsupported, "os.system");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02"
                                   "ctorch\nload\n."),
                     ErrorCode::kUnsupported, "torch.load");
}

TEST_CASE("Unpickle reports malformed pickles", "[core][pickle]") {
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02K\x05"), ErrorCode::kDataLoss, "test.pkl", "truncated");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02X\xff\x00\x00\x00ab."s), ErrorCode::kDataLoss,
                     "truncated");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02."), ErrorCode::kDataLoss, "stack underflow");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02h\x07."), ErrorCode::kDataLoss, "memo index 7");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02K\x01t."), ErrorCode::kDataLoss, "MARK");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02K\x07K\x01K\x02s."), ErrorCode::kDataLoss,
                     "SETITEM applied to int 7");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02(S'x'\n."), ErrorCode::kUnsupported, "opcode 0x53",
                     "byte 3");
  REQUIRE_CORE_ERROR(UnpickleBytes("\x80\x02NQ."), ErrorCode::kDataLoss, "persistent id");
}

TEST_CASE("Unpickle survives lists nested a million deep", "[core][pickle]") {
  const size_t depth = 1000000;
  std::string bytes = "\x80\x02" + std::string(depth, ']') + std::string(depth - 1, 'a') + ".";
  PickleValuePtr root = UnpickleBytes(bytes);
  const PickleValue* v = root.get();
  size_t levels = 1;
  while (!v->items.empty()) {
    v = v->items[0].get();
    ++levels;
  }
  REQUIRE(levels == depth);
  root.reset();  // must not overflow the stack
}

// A pickle that rebuilds one tensor from persistent id None with the given size and stride tuples.
std::string RebuildPickle(const std::string& size, const std::string& stride, char offset) {
  return std::string(
             "\x80\x02"
             "ctorch._utils\n_rebuild_tensor_v2\n(NQK") +
         offset + size + stride +
         "\x89"
         "ccollections\nOrderedDict\n)RtR.";
}

TEST_CASE("Unpickle rebuilds strided tensors over a persistent storage", "[core][pickle]") {
  at::Tensor elements = at::arange(6, at::kFloat);
  PersistentLoadFn load = [&](const PickleValue& pid) {
    REQUIRE(pid.kind == Kind::kNone);
    auto storage = std::make_shared<PickleValue>();
    storage->kind = Kind::kStorage;
    storage->tensor = elements;
    return storage;
  };
  // size (2, 2), stride (1, 2), offset 1: the transpose of [[1, 2], [3, 4]].
  PickleValuePtr t = UnpickleBytes(RebuildPickle("K\x02K\x02\x86", "K\x01K\x02\x86", 1), load);
  REQUIRE(t->kind == Kind::kTensor);
  REQUIRE(t->tensor.sizes() == at::IntArrayRef({2, 2}));
  REQUIRE_FALSE(t->tensor.is_contiguous());
  REQUIRE(at::equal(t->tensor, at::tensor({1.f, 3.f, 2.f, 4.f}).reshape({2, 2})));
  REQUIRE(t->tensor.data_ptr() != nullptr);
  REQUIRE(t->tensor.storage().data() == elements.storage().data());  // a view, not a copy

  // size (3, 2) stride (2, 1) at offset 1 would read element 6 of a 6-element storage.
  REQUIRE_CORE_ERROR(UnpickleBytes(RebuildPickle("K\x03K\x02\x86", "K\x02K\x01\x86", 1), load),
                     ErrorCode::kDataLoss, "test.pkl", "reaches element 6", "6 elements");
  REQUIRE_CORE_ERROR(UnpickleBytes(RebuildPickle("K\x03K\x02\x86", "K\x02\x85", 0), load),
                     ErrorCode::kDataLoss, "dimensions");
}

TEST_CASE("StorageGlobalDtype maps torch's typed storages only", "[core][pickle]") {
  at::ScalarType dtype = at::kByte;
  REQUIRE(StorageGlobalDtype("torch.HalfStorage", &dtype));
  REQUIRE(dtype == at::kHalf);
  REQUIRE(StorageGlobalDtype("torch.BFloat16Storage", &dtype));
  REQUIRE(dtype == at::kBFloat16);
  REQUIRE_FALSE(StorageGlobalDtype("collections.OrderedDict", &dtype));
  REQUIRE_FALSE(StorageGlobalDtype("torch.cuda.FloatStorage", &dtype));
}

}  // namespace
}  // namespace hpsearch::core
