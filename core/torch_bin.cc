#include "core/torch_bin.h"

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/pickle.h"
#include "core/pickle_globals.h"
#include "core/zip_archive.h"

namespace hpsearch::core {
namespace {

using Kind = PickleValue::Kind;

// torch.serialization's MAGIC_NUMBER 0x1950a86a20f9469cfc6c as pickle's little-endian LONG1
// payload.
constexpr unsigned char kLegacyMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                          0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocolVersion = 1001;

// The parts of a persistent id both formats share: ('storage', <storage global>, key, location,
// numel, ...).
struct StorageRef {
  at::ScalarType dtype;
  std::string key;
  int64_t numel;
};

StorageRef ParseStorageRef(const PickleValue& pid, size_t min_items, size_t max_items,
                           const std::string& where) {
  auto bad = [&](const std::string& what) {
    Fail(ErrorCode::kDataLoss, where + ": persistent id " + pid.Describe() + ": " + what);
  };
  if (pid.kind != Kind::kTuple || pid.items.size() < min_items || pid.items.size() > max_items) {
    bad("expected a tuple ('storage', type, key, location, numel" +
        std::string(max_items > 5 ? ", view)" : ")"));
  }
  const auto& it = pid.items;
  if (it[0]->kind != Kind::kString || it[0]->text != "storage") bad("first item is not 'storage'");
  StorageRef ref;
  if (it[1]->kind != Kind::kGlobal || !StorageGlobalDtype(it[1]->text, &ref.dtype)) {
    Fail(ErrorCode::kUnsupported,
         where + ": storage type " + it[1]->Describe() + " is not a supported typed storage");
  }
  if (it[2]->kind != Kind::kString) bad("storage key is " + it[2]->Describe());
  ref.key = it[2]->text;
  if (it[3]->kind != Kind::kString) bad("location is " + it[3]->Describe());
  if (it[4]->kind != Kind::kInt || it[4]->int_value < 0)
    bad("element count is " + it[4]->Describe());
  ref.numel = it[4]->int_value;
  return ref;
}

PickleValuePtr MakeStorage(at::Tensor elements) {
  auto v = std::make_shared<PickleValue>();
  v->kind = Kind::kStorage;
  v->tensor = std::move(elements);
  return v;
}

// Checks that `numel` elements of `dtype` fit in `limit` bytes before anything that size is
// allocated.
void CheckStorageFits(const StorageRef& ref, uint64_t limit, const std::string& where) {
  const uint64_t item = at::elementSize(ref.dtype);
  if (static_cast<uint64_t>(ref.numel) > limit / item) {
    Fail(ErrorCode::kDataLoss, where + ": storage " + ref.key + " claims " +
                                   std::to_string(ref.numel) +
                                   " elements, more than the file can hold (truncated or corrupt)");
  }
}

TensorMap ToTensorMap(const PickleValue& root, const std::string& where) {
  if (root.kind != Kind::kDict) {
    Fail(ErrorCode::kDataLoss,
         where + ": holds a " + root.Describe() + ", not a state_dict (a dict of name -> tensor)");
  }
  TensorMap tensors;
  for (const auto& [key, value] : root.entries) {
    if (key->kind != Kind::kString) {
      Fail(ErrorCode::kDataLoss,
           where + ": state_dict key " + key->Describe() + " is not a string");
    }
    if (value->kind != Kind::kTensor) {
      Fail(ErrorCode::kDataLoss, where + ": state_dict entry \"" + key->text + "\" holds a " +
                                     value->Describe() + ", not a tensor");
    }
    if (!tensors.emplace(key->text, value->tensor).second) {
      Fail(ErrorCode::kDataLoss, where + ": state_dict names \"" + key->text + "\" twice");
    }
  }
  return tensors;
}

TensorMap ReadZipFormat(const std::filesystem::path& path) {
  const std::string where = path.string();
  ZipArchive archive(path);
  // The records sit under one folder named after the file torch.save was given ("archive" for a
  // stream).
  const ZipArchive::Entry* pickle_entry = nullptr;
  std::string prefix;
  for (const ZipArchive::Entry& e : archive.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      pickle_entry = &e;
      prefix = e.name.substr(0, slash + 1);
      break;
    }
  }
  if (pickle_entry == nullptr) {
    Fail(ErrorCode::kDataLoss, where +
                                   ": zip archive has no <name>/data.pkl; not a torch.save file "
                                   "(a TorchScript archive holds code, not a state_dict)");
  }
  if (const ZipArchive::Entry* order = archive.Find(prefix + "byteorder")) {
    if (order->size > 16 || archive.ReadString(*order) != "little") {
      Fail(ErrorCode::kUnsupported,
           where + ": saved on a big-endian machine; re-save it little-endian");
    }
  }
  const std::string source = where + ": " + pickle_entry->name;
  std::istringstream pickle(archive.ReadString(*pickle_entry));
  std::map<std::string, PickleValuePtr> storages;
  PersistentLoadFn load = [&](const PickleValue& pid) {
    StorageRef ref = ParseStorageRef(pid, 5, 5, source);
    auto cached = storages.find(ref.key);
    if (cached != storages.end()) {
      if (cached->second->tensor.scalar_type() != ref.dtype) {
        Fail(ErrorCode::kDataLoss, source + ": storage " + ref.key + " is used with two dtypes");
      }
      return cached->second;
    }
    const std::string name = prefix + "data/" + ref.key;
    const ZipArchive::Entry* entry = archive.Find(name);
    if (entry == nullptr) {
      Fail(ErrorCode::kDataLoss, where + ": storage \"" + ref.key + "\" has no zip entry " + name);
    }
    const uint64_t bytes = static_cast<uint64_t>(ref.numel) * at::elementSize(ref.dtype);
    CheckStorageFits(ref, entry->size, where);
    if (entry->size != bytes) {
      Fail(ErrorCode::kDataLoss, where + ": zip entry " + name + " holds " +
                                     std::to_string(entry->size) +
                                     " bytes, but its storage needs " + std::to_string(bytes));
    }
    at::Tensor elements = at::empty({ref.numel}, at::TensorOptions().dtype(ref.dtype));
    archive.Read(*entry, elements.data_ptr());
    return storages[ref.key] = MakeStorage(std::move(elements));
  };
  PickleValuePtr root = Unpickle(pickle, pickle_entry->size, source, load);
  return ToTensorMap(*root, where);
}

TensorMap ReadLegacyFormat(const std::filesystem::path& path, uint64_t file_size) {
  const std::string where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(ErrorCode::kIo, where + ": cannot open for reading");
  auto remaining = [&] { return file_size - static_cast<uint64_t>(in.tellg()); };

  PickleValuePtr magic = Unpickle(in, remaining(), where + ": magic number", nullptr);
  if (magic->kind != Kind::kBigInt || magic->text.size() != sizeof(kLegacyMagic) ||
      std::memcmp(magic->text.data(), kLegacyMagic, sizeof(kLegacyMagic)) != 0) {
    Fail(ErrorCode::kDataLoss, where +
                                   ": starts with a pickle but not torch's magic number; not a "
                                   "PyTorch checkpoint");
  }
  PickleValuePtr version = Unpickle(in, remaining(), where + ": protocol version", nullptr);
  if (version->kind != Kind::kInt || version->int_value != kLegacyProtocolVersion) {
    Fail(ErrorCode::kUnsupported,
         where + ": legacy serialization protocol " + version->Describe() + ", expected 1001");
  }
  PickleValuePtr sys_info = Unpickle(in, remaining(), where + ": sys_info", nullptr);
  if (sys_info->kind == Kind::kDict) {
    for (const auto& [key, value] : sys_info->entries) {
      if (key->kind == Kind::kString && key->text == "little_endian" &&
          value->kind == Kind::kBool && !value->bool_value) {
        Fail(ErrorCode::kUnsupported, where + ": saved on a big-endian machine");
      }
    }
  }

  // Storages are allocated as the pickle names them and filled from the records after it.
  std::map<std::string, PickleValuePtr> roots;
  std::map<std::string, PickleValuePtr> views;
  const std::string source = where + ": state_dict pickle";
  PersistentLoadFn load = [&](const PickleValue& pid) {
    StorageRef ref = ParseStorageRef(pid, 5, 6, source);
    PickleValuePtr& root = roots[ref.key];
    if (!root) {
      CheckStorageFits(ref, file_size, where);
      root = MakeStorage(at::empty({ref.numel}, at::TensorOptions().dtype(ref.dtype)));
    } else if (root->tensor.scalar_type() != ref.dtype || root->tensor.numel() != ref.numel) {
      Fail(ErrorCode::kDataLoss, source + ": storage " + ref.key + " is described two ways");
    }
    if (pid.items.size() < 6 || pid.items[5]->kind == Kind::kNone) return root;
    // (view_key, offset, size), both in elements of the root: very old torch saved storage slices
    // so.
    const PickleValue& view = *pid.items[5];
    if (view.kind != Kind::kTuple || view.items.size() != 3 ||
        view.items[0]->kind != Kind::kString || view.items[1]->kind != Kind::kInt ||
        view.items[2]->kind != Kind::kInt) {
      Fail(ErrorCode::kDataLoss,
           source + ": storage view of " + ref.key + " is " + view.Describe());
    }
    const int64_t offset = view.items[1]->int_value, size = view.items[2]->int_value;
    if (offset < 0 || size < 0 || offset > ref.numel || size > ref.numel - offset) {
      Fail(ErrorCode::kDataLoss, source + ": storage view [" + std::to_string(offset) + ", +" +
                                     std::to_string(size) + ") lies outside storage " + ref.key);
    }
    PickleValuePtr& slice = views[view.items[0]->text];
    if (!slice) slice = MakeStorage(root->tensor.narrow(0, offset, size));
    return slice;
  };
  PickleValuePtr state_dict = Unpickle(in, remaining(), source, load);
  PickleValuePtr keys = Unpickle(in, remaining(), where + ": storage key list", nullptr);
  if (keys->kind != Kind::kList) {
    Fail(ErrorCode::kDataLoss, where + ": storage key list is a " + keys->Describe());
  }
  size_t filled = 0;
  for (const PickleValuePtr& key : keys->items) {
    if (key->kind != Kind::kString) {
      Fail(ErrorCode::kDataLoss, where + ": storage key list holds " + key->Describe());
    }
    auto it = roots.find(key->text);
    if (it == roots.end()) {
      Fail(ErrorCode::kDataLoss,
           where + ": storage \"" + key->text + "\" is stored but never used");
    }
    at::Tensor& elements = it->second->tensor;
    unsigned char count_bytes[8];
    in.read(reinterpret_cast<char*>(count_bytes), 8);
    uint64_t count = 0;
    for (int i = 7; i >= 0; --i) count = (count << 8) | count_bytes[i];
    if (in.gcount() != 8) {
      Fail(ErrorCode::kDataLoss, where + ": truncated before storage \"" + key->text + "\"");
    }
    if (count != static_cast<uint64_t>(elements.numel())) {
      Fail(ErrorCode::kDataLoss, where + ": storage \"" + key->text + "\" records " +
                                     std::to_string(count) + " elements, the pickle says " +
                                     std::to_string(elements.numel()));
    }
    const uint64_t bytes = count * elements.element_size();
    in.read(static_cast<char*>(elements.data_ptr()), static_cast<std::streamsize>(bytes));
    if (static_cast<uint64_t>(in.gcount()) != bytes) {
      Fail(ErrorCode::kDataLoss, where + ": storage \"" + key->text + "\" is truncated (" +
                                     std::to_string(in.gcount()) + " of " + std::to_string(bytes) +
                                     " bytes)");
    }
    ++filled;
  }
  if (filled != roots.size()) {
    Fail(ErrorCode::kDataLoss, where + ": the storage key list names " + std::to_string(filled) +
                                   " storages but the state_dict uses " +
                                   std::to_string(roots.size()));
  }
  return ToTensorMap(*state_dict, where);
}

}  // namespace

TensorMap ReadTorchBin(const std::filesystem::path& path) {
  const std::string where = path.string();
  const uint16_t probe = 1;
  unsigned char first_byte = 0;
  std::memcpy(&first_byte, &probe, 1);
  if (first_byte != 1) Fail(ErrorCode::kUnsupported, where + ": big-endian hosts are unsupported");
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) Fail(ErrorCode::kNotFound, where + ": cannot stat PyTorch checkpoint: " + ec.message());
  char head[512] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) Fail(ErrorCode::kIo, where + ": cannot open for reading");
    in.read(head, sizeof(head));
  }
  if (file_size >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return ReadZipFormat(path);
  if (file_size >= 1 && static_cast<unsigned char>(head[0]) == 0x80) {
    return ReadLegacyFormat(path, file_size);
  }
  if (file_size >= 262 && std::memcmp(head + 257, "ustar", 5) == 0) {
    Fail(ErrorCode::kUnsupported, where +
                                      ": tar-format checkpoint (PyTorch < 0.4); re-save it with a "
                                      "newer torch.save or as safetensors");
  }
  Fail(ErrorCode::kDataLoss, where +
                                 ": neither a zip nor a legacy PyTorch checkpoint (truncated, or "
                                 "not written by torch.save)");
}

}  // namespace hpsearch::core
