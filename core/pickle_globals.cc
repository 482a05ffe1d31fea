#include "core/pickle_globals.h"

#include <ATen/ATen.h>

#include <functional>

#include "core/error.h"

namespace hpsearch::core {
namespace {

enum class GlobalRole {
  kOrderedDict,
  kRebuildTensor,
  kRebuildTensorV2,
  kRebuildParameter,
  kRebuildParameterWithState,
  kStorageType,
};

struct AllowedGlobal {
  const char* name;
  GlobalRole role;
  at::ScalarType storage_dtype;  // kStorageType only
};

constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections.OrderedDict", GlobalRole::kOrderedDict, at::kFloat},
    {"torch._utils._rebuild_tensor", GlobalRole::kRebuildTensor, at::kFloat},
    {"torch._utils._rebuild_tensor_v2", GlobalRole::kRebuildTensorV2, at::kFloat},
    {"torch._utils._rebuild_parameter", GlobalRole::kRebuildParameter, at::kFloat},
    {"torch._utils._rebuild_parameter_with_state", GlobalRole::kRebuildParameterWithState,
     at::kFloat},
    {"torch.DoubleStorage", GlobalRole::kStorageType, at::kDouble},
    {"torch.FloatStorage", GlobalRole::kStorageType, at::kFloat},
    {"torch.HalfStorage", GlobalRole::kStorageType, at::kHalf},
    {"torch.BFloat16Storage", GlobalRole::kStorageType, at::kBFloat16},
    {"torch.LongStorage", GlobalRole::kStorageType, at::kLong},
    {"torch.IntStorage", GlobalRole::kStorageType, at::kInt},
    {"torch.ShortStorage", GlobalRole::kStorageType, at::kShort},
    {"torch.CharStorage", GlobalRole::kStorageType, at::kChar},
    {"torch.ByteStorage", GlobalRole::kStorageType, at::kByte},
    {"torch.BoolStorage", GlobalRole::kStorageType, at::kBool},
};

const AllowedGlobal* FindAllowedGlobal(const std::string& name) {
  for (const AllowedGlobal& g : kAllowedGlobals) {
    if (name == g.name) return &g;
  }
  return nullptr;
}

PickleValuePtr MakeValue(PickleValue::Kind kind) {
  auto v = std::make_shared<PickleValue>();
  v->kind = kind;
  return v;
}

}  // namespace

PickleValuePtr ResolvePickleGlobal(const std::string& full, const std::string& where) {
  if (FindAllowedGlobal(full) == nullptr) {
    Fail(ErrorCode::kUnsupported,
         where + ": refusing to load global \"" + full +
             "\": it is not on the allow-list of a PyTorch state_dict (the file may be "
             "malicious, or hold more than tensors; re-save it with "
             "torch.save(model.state_dict()) or as safetensors)");
  }
  auto v = MakeValue(PickleValue::Kind::kGlobal);
  v->text = full;
  return v;
}

namespace {

// Checked arithmetic for the extent of a strided view; sizes and strides come from the file.
bool MulAdd(uint64_t a, uint64_t b, uint64_t* acc) {
  uint64_t product;
  if (__builtin_mul_overflow(a, b, &product)) return false;
  return !__builtin_add_overflow(*acc, product, acc);
}

// `bad` throws.
std::vector<int64_t> IntTuple(const PickleValue& v, const char* what,
                              const std::function<void(const std::string&)>& bad) {
  if (v.kind != PickleValue::Kind::kTuple) bad(std::string(what) + " is " + v.Describe());
  std::vector<int64_t> out;
  for (const PickleValuePtr& item : v.items) {
    if (item->kind != PickleValue::Kind::kInt || item->int_value < 0) {
      bad(std::string(what) + " holds " + item->Describe() + ", not a non-negative int");
    }
    out.push_back(item->int_value);
  }
  return out;
}

PickleValuePtr RebuildTensor(const std::vector<PickleValuePtr>& args, const std::string& where) {
  auto bad = [&where](const std::string& what) {
    Fail(ErrorCode::kDataLoss, where + ": _rebuild_tensor: " + what);
  };
  const PickleValue& storage = *args[0];
  if (storage.kind != PickleValue::Kind::kStorage) bad("storage argument is " + storage.Describe());
  if (args[1]->kind != PickleValue::Kind::kInt || args[1]->int_value < 0) {
    bad("storage offset is " + args[1]->Describe());
  }
  const int64_t offset = args[1]->int_value;
  std::vector<int64_t> size = IntTuple(*args[2], "size", bad);
  std::vector<int64_t> stride = IntTuple(*args[3], "stride", bad);
  if (size.size() != stride.size()) {
    bad("size has " + std::to_string(size.size()) + " dimensions but stride has " +
        std::to_string(stride.size()));
  }
  const uint64_t storage_numel = static_cast<uint64_t>(storage.tensor.numel());
  bool empty = false;
  uint64_t last = static_cast<uint64_t>(offset);
  for (size_t i = 0; i < size.size(); ++i) {
    if (size[i] == 0) empty = true;
    if (size[i] > 0 && !MulAdd(static_cast<uint64_t>(size[i] - 1), stride[i], &last)) {
      bad("size and stride overflow");
    }
  }
  if (!empty && last >= storage_numel) {
    bad("a tensor of size " + args[2]->Describe() + " at offset " + std::to_string(offset) +
        " reaches element " + std::to_string(last) + " of a storage of " +
        std::to_string(storage_numel) + " elements");
  }
  if (empty && static_cast<uint64_t>(offset) > storage_numel)
    bad("storage offset beyond the storage");
  auto v = MakeValue(PickleValue::Kind::kTensor);
  v->tensor = storage.tensor.as_strided(size, stride, storage.tensor.storage_offset() + offset);
  return v;
}

}  // namespace

PickleValuePtr CallPickleGlobal(const PickleValue& callable, const PickleValue& args,
                                const std::string& where) {
  auto bad = [&where](ErrorCode code, const std::string& what) { Fail(code, where + ": " + what); };
  if (callable.kind != PickleValue::Kind::kGlobal) {
    bad(ErrorCode::kUnsupported, "REDUCE calls " + callable.Describe() + ", not a global");
  }
  if (args.kind != PickleValue::Kind::kTuple) {
    bad(ErrorCode::kDataLoss, "REDUCE of " + callable.text + " with " + args.Describe());
  }
  const AllowedGlobal* global = FindAllowedGlobal(callable.text);
  const std::vector<PickleValuePtr>& a = args.items;
  auto arity = [&](size_t low, size_t high) {
    if (a.size() < low || a.size() > high) {
      bad(ErrorCode::kDataLoss, callable.text + " called with " + std::to_string(a.size()) +
                                    " arguments, expected " + std::to_string(low) +
                                    (high != low ? " to " + std::to_string(high) : ""));
    }
  };
  switch (global->role) {
    case GlobalRole::kOrderedDict: {
      arity(0, 1);
      auto dict = MakeValue(PickleValue::Kind::kDict);
      if (a.size() == 1) {
        const PickleValue& pairs = *a[0];
        if (pairs.kind != PickleValue::Kind::kList && pairs.kind != PickleValue::Kind::kTuple) {
          bad(ErrorCode::kDataLoss, "OrderedDict built from " + pairs.Describe());
        }
        for (const PickleValuePtr& pair : pairs.items) {
          if ((pair->kind != PickleValue::Kind::kTuple && pair->kind != PickleValue::Kind::kList) ||
              pair->items.size() != 2) {
            bad(ErrorCode::kDataLoss, "OrderedDict item is " + pair->Describe() + ", not a pair");
          }
          dict->entries.emplace_back(pair->items[0], pair->items[1]);
        }
      }
      return dict;
    }
    case GlobalRole::kRebuildTensor:
      arity(4, 4);
      return RebuildTensor(a, where);
    case GlobalRole::kRebuildTensorV2:
      // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata]); the last three
      // only matter to autograd.
      arity(6, 7);
      return RebuildTensor(a, where);
    case GlobalRole::kRebuildParameter:
    case GlobalRole::kRebuildParameterWithState:
      arity(global->role == GlobalRole::kRebuildParameter ? 3 : 4,
            global->role == GlobalRole::kRebuildParameter ? 3 : 4);
      if (a[0]->kind != PickleValue::Kind::kTensor) {
        bad(ErrorCode::kDataLoss, callable.text + " of " + a[0]->Describe());
      }
      return a[0];
    case GlobalRole::kStorageType:
      break;
  }
  Fail(ErrorCode::kUnsupported, where + ": REDUCE calls " + callable.text +
                                    ", which a state_dict only names as a storage type");
}

bool StorageGlobalDtype(const std::string& global_name, at::ScalarType* dtype) {
  const AllowedGlobal* g = FindAllowedGlobal(global_name);
  if (g == nullptr || g->role != GlobalRole::kStorageType) return false;
  *dtype = g->storage_dtype;
  return true;
}

}  // namespace hpsearch::core
