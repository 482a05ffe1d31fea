// A reader for the subset of Python's pickle format that PyTorch uses to save a state_dict
// (protocol 2, as torch.save writes it, plus the framing and opcodes of protocols 3-5). It never
// executes anything: the only globals it accepts are an allow-list of names whose effect it
// implements itself (collections.OrderedDict, torch._utils._rebuild_tensor{,_v2},
// torch._utils._rebuild_parameter{,_with_state} and the typed storage classes torch.FloatStorage,
// torch.HalfStorage, ...). Any other global (os.system, builtins.eval, posix.system, ...) is
// refused with an error naming it, before anything else happens.
//
// Persistent ids (how torch.save refers to tensor storages stored outside the pickle) are handed to
// a caller-supplied function that returns the storage; see torch_bin.h.
//
// PickleValue trees are plain data with shared ownership (a memoised object may appear in several
// places). Unpickling is thread-safe for distinct streams.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace hpsearch::core {

struct PickleValue;
using PickleValuePtr = std::shared_ptr<PickleValue>;

// One Python object of the subset.
struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,     // fits in int64: int_value
    kBigInt,  // wider than int64: text holds its two's-complement little-endian bytes
    kFloat,
    kString,  // text holds UTF-8 (or, for Python 2 str, raw bytes)
    kBytes,   // text holds the bytes
    kTuple,
    kList,
    kDict,     // entries in insertion order (an OrderedDict is a kDict)
    kGlobal,   // an allow-listed global, text = "module.name"
    kStorage,  // a storage from a persistent id: tensor is its elements, 1-D, of the storage's
               // dtype
    kTensor,
  };

  Kind kind = Kind::kNone;
  bool bool_value = false;
  int64_t int_value = 0;
  double float_value = 0.0;
  std::string text;
  std::vector<PickleValuePtr> items;                               // kTuple, kList
  std::vector<std::pair<PickleValuePtr, PickleValuePtr>> entries;  // kDict
  at::Tensor tensor;                                               // kStorage, kTensor

  PickleValue() = default;
  PickleValue(const PickleValue&) = default;
  PickleValue& operator=(const PickleValue&) = default;
  // Frees nested containers iteratively: a hostile pickle may nest lists a million deep, and the
  // default recursive destruction would overflow the stack.
  ~PickleValue();

  // A short Python-like description for error messages: "int 5", "str 'wte.weight'", "tuple of 3".
  std::string Describe() const;
};

// Turns a persistent id (the object torch's pickler returned from persistent_id, usually a tuple
// such as
// ('storage', torch.FloatStorage, '0', 'cpu', 1024)) into a kStorage value. Throws core::Error when
// the id is malformed or its data is missing.
using PersistentLoadFn = std::function<PickleValuePtr(const PickleValue& persistent_id)>;

// Reads one pickle from `in`, leaving the stream just after its STOP opcode. `source` names the
// input in errors ("pytorch_model.bin: pytorch_model/data.pkl"); `available_bytes` bounds every
// length field (the bytes left in the stream). `persistent_load` may be empty when the pickle must
// not contain persistent ids. Throws core::Error naming `source` and the byte offset: kUnsupported
// for a global outside the allow-list (the message names it) or an opcode outside the subset;
// kDataLoss for a truncated or malformed pickle (stack underflow, missing MARK, unknown memo index,
// wrong argument types for an allow-listed call, a tensor reaching outside its storage).
PickleValuePtr Unpickle(std::istream& in, uint64_t available_bytes, const std::string& source,
                        const PersistentLoadFn& persistent_load);

}  // namespace hpsearch::core
