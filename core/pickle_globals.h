// The allow-list of Python globals the pickle reader (pickle.h) accepts, and what each one means
// when a pickle calls it (REDUCE). Only names a torch.save'd state_dict uses are on it:
//   collections.OrderedDict                      -> a kDict
//   torch._utils._rebuild_tensor, _rebuild_tensor_v2
//                                                -> a strided view of a kStorage, bounds-checked
//   torch._utils._rebuild_parameter, _rebuild_parameter_with_state
//                                                -> the tensor itself (autograd state is dropped)
//   torch.{Double,Float,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage
//                                                -> a storage type, only valid inside a persistent
//                                                id
// Nothing is ever executed: each name is interpreted by this file's own code. Stateless and
// thread-safe.
#pragma once

#include <string>

#include "core/pickle.h"

namespace hpsearch::core {

// The kGlobal value for "module.name". `where` ("file: pickle byte N") prefixes errors.
// Throws core::Error (kUnsupported) naming `full_name` when it is not on the allow-list.
PickleValuePtr ResolvePickleGlobal(const std::string& full_name, const std::string& where);

// Calls the allow-listed `callable` (a kGlobal from ResolvePickleGlobal) on `args`.
// Throws core::Error: kDataLoss for a wrong argument count or type, or a tensor that would reach
// outside its storage; kUnsupported when `callable` is not a global or cannot be called (a storage
// type).
PickleValuePtr CallPickleGlobal(const PickleValue& callable, const PickleValue& args,
                                const std::string& where);

// Maps a typed storage global ("torch.FloatStorage") to its dtype. Returns false for anything else.
bool StorageGlobalDtype(const std::string& global_name, at::ScalarType* dtype);

}  // namespace hpsearch::core
