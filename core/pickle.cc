#include "core/pickle.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "core/pickle_globals.h"

namespace hpsearch::core {
namespace {

// What an allow-listed global does when called (REDUCE) or when used as a persistent id's storage
// type.

PickleValuePtr Make(PickleValue::Kind kind) {
  auto v = std::make_shared<PickleValue>();
  v->kind = kind;
  return v;
}

PickleValuePtr MakeInt(int64_t value) {
  auto v = Make(PickleValue::Kind::kInt);
  v->int_value = value;
  return v;
}

PickleValuePtr MakeText(PickleValue::Kind kind, std::string text) {
  auto v = Make(kind);
  v->text = std::move(text);
  return v;
}

PickleValuePtr MakeSequence(PickleValue::Kind kind, std::vector<PickleValuePtr> items) {
  auto v = Make(kind);
  v->items = std::move(items);
  return v;
}

class Unpickler {
 public:
  Unpickler(std::istream& in, uint64_t available, const std::string& source,
            const PersistentLoadFn& persistent_load)
      : in_(in), available_(available), source_(source), persistent_load_(persistent_load) {}

  PickleValuePtr Run();

 private:
  [[noreturn]] void Bad(ErrorCode code, const std::string& what) const {
    Fail(code, Where() + ": " + what);
  }
  void ReadBytes(void* dst, uint64_t n);
  uint64_t ReadUint(int bytes);
  std::string ReadString(uint64_t n);
  std::string ReadLine();

  void Push(PickleValuePtr v) { stack_.push_back(std::move(v)); }
  PickleValuePtr Pop();
  const PickleValuePtr& Top() const;
  std::vector<PickleValuePtr> PopMark();
  std::vector<PickleValuePtr> PopN(size_t n);

  // "test.pkl: pickle byte 12", the prefix of errors raised outside the unpickler.
  std::string Where() const { return source_ + ": pickle byte " + std::to_string(opcode_offset_); }
  void SetItems(PickleValue& dict, std::vector<PickleValuePtr> flat);
  PickleValue& TopContainer(PickleValue::Kind kind, const char* opcode);
  PickleValuePtr Long(const std::string& bytes) const;

  std::istream& in_;
  const uint64_t available_;
  const std::string& source_;
  const PersistentLoadFn& persistent_load_;
  uint64_t offset_ = 0;
  uint64_t opcode_offset_ = 0;
  std::vector<PickleValuePtr> stack_;
  std::vector<std::vector<PickleValuePtr>> metastack_;
  std::unordered_map<uint64_t, PickleValuePtr> memo_;
};

void Unpickler::ReadBytes(void* dst, uint64_t n) {
  if (n > available_ - offset_) {
    Bad(ErrorCode::kDataLoss, "truncated: needs " + std::to_string(n) + " more bytes, " +
                                  std::to_string(available_ - offset_) + " left");
  }
  in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (static_cast<uint64_t>(in_.gcount()) != n) Bad(ErrorCode::kDataLoss, "truncated (short read)");
  offset_ += n;
}

uint64_t Unpickler::ReadUint(int bytes) {
  unsigned char buf[8];
  ReadBytes(buf, bytes);
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | buf[i];
  return value;
}

std::string Unpickler::ReadString(uint64_t n) {
  if (n > available_ - offset_) {
    Bad(ErrorCode::kDataLoss, "truncated: a " + std::to_string(n) + "-byte string with only " +
                                  std::to_string(available_ - offset_) + " bytes left");
  }
  std::string s(n, '\0');
  ReadBytes(s.data(), n);
  return s;
}

std::string Unpickler::ReadLine() {
  std::string line;
  for (;;) {
    char c;
    ReadBytes(&c, 1);
    if (c == '\n') return line;
    if (line.size() >= 256) Bad(ErrorCode::kDataLoss, "GLOBAL name longer than 256 bytes");
    line.push_back(c);
  }
}

PickleValuePtr Unpickler::Pop() {
  if (stack_.empty()) Bad(ErrorCode::kDataLoss, "stack underflow (malformed pickle)");
  PickleValuePtr v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

const PickleValuePtr& Unpickler::Top() const {
  if (stack_.empty()) Bad(ErrorCode::kDataLoss, "stack underflow (malformed pickle)");
  return stack_.back();
}

std::vector<PickleValuePtr> Unpickler::PopMark() {
  if (metastack_.empty()) Bad(ErrorCode::kDataLoss, "no MARK to pop to (malformed pickle)");
  std::vector<PickleValuePtr> items = std::move(stack_);
  stack_ = std::move(metastack_.back());
  metastack_.pop_back();
  return items;
}

std::vector<PickleValuePtr> Unpickler::PopN(size_t n) {
  if (stack_.size() < n) Bad(ErrorCode::kDataLoss, "stack underflow (malformed pickle)");
  std::vector<PickleValuePtr> items(std::make_move_iterator(stack_.end() - n),
                                    std::make_move_iterator(stack_.end()));
  stack_.resize(stack_.size() - n);
  return items;
}

PickleValue& Unpickler::TopContainer(PickleValue::Kind kind, const char* opcode) {
  const PickleValuePtr& top = Top();
  if (top->kind != kind) {
    Bad(ErrorCode::kDataLoss, std::string(opcode) + " applied to " + top->Describe());
  }
  return *top;
}

void Unpickler::SetItems(PickleValue& dict, std::vector<PickleValuePtr> flat) {
  if (flat.size() % 2 != 0) Bad(ErrorCode::kDataLoss, "SETITEMS with an odd number of items");
  for (size_t i = 0; i < flat.size(); i += 2) {
    dict.entries.emplace_back(std::move(flat[i]), std::move(flat[i + 1]));
  }
}

PickleValuePtr Unpickler::Long(const std::string& bytes) const {
  if (bytes.empty()) return MakeInt(0);
  const bool negative = static_cast<unsigned char>(bytes.back()) & 0x80;
  // Redundant sign bytes above the 8th do not change the value.
  size_t significant = bytes.size();
  const unsigned char fill = negative ? 0xFF : 0x00;
  while (significant > 8 && static_cast<unsigned char>(bytes[significant - 1]) == fill)
    --significant;
  if (significant > 8 ||
      (significant == 8 && bytes.size() > 8 &&
       (static_cast<unsigned char>(bytes[7]) & 0x80) != (negative ? 0x80 : 0x00))) {
    return MakeText(PickleValue::Kind::kBigInt, bytes);
  }
  uint64_t value = negative ? ~uint64_t{0} : 0;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    value &= ~(uint64_t{0xFF} << (8 * i));
    value |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  int64_t signed_value;
  std::memcpy(&signed_value, &value, sizeof(value));
  return MakeInt(signed_value);
}

PickleValuePtr Unpickler::Run() {
  for (;;) {
    opcode_offset_ = offset_;
    unsigned char op;
    ReadBytes(&op, 1);
    switch (op) {
      case 0x80:  // PROTO
        if (ReadUint(1) > 5) Bad(ErrorCode::kUnsupported, "pickle protocol above 5");
        break;
      case 0x95: {  // FRAME: a length hint for buffered readers; the stream is read as it comes.
        uint64_t frame = ReadUint(8);
        if (frame > available_ - offset_)
          Bad(ErrorCode::kDataLoss, "truncated: FRAME runs past the end");
        break;
      }
      case '.':  // STOP
        return Pop();
      case '(':  // MARK
        metastack_.push_back(std::move(stack_));
        stack_.clear();
        break;
      case '0':  // POP
        if (!stack_.empty()) {
          stack_.pop_back();
        } else {
          PopMark();
        }
        break;
      case '1':  // POP_MARK
        PopMark();
        break;
      case '2':  // DUP
        Push(Top());
        break;
      case 'N':
        Push(Make(PickleValue::Kind::kNone));
        break;
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        auto v = Make(PickleValue::Kind::kBool);
        v->bool_value = op == 0x88;
        Push(v);
        break;
      }
      case 'J': {  // BININT: signed 4 bytes
        const uint32_t raw = static_cast<uint32_t>(ReadUint(4));
        int32_t value;
        std::memcpy(&value, &raw, sizeof(value));
        Push(MakeInt(value));
        break;
      }
      case 'K':  // BININT1
        Push(MakeInt(static_cast<int64_t>(ReadUint(1))));
        break;
      case 'M':  // BININT2
        Push(MakeInt(static_cast<int64_t>(ReadUint(2))));
        break;
      case 0x8a:  // LONG1
        Push(Long(ReadString(ReadUint(1))));
        break;
      case 0x8b:  // LONG4
        Push(Long(ReadString(ReadUint(4))));
        break;
      case 'G': {  // BINFLOAT: big-endian IEEE 754 double
        unsigned char buf[8];
        ReadBytes(buf, 8);
        uint64_t bits = 0;
        for (unsigned char b : buf) bits = (bits << 8) | b;
        auto v = Make(PickleValue::Kind::kFloat);
        std::memcpy(&v->float_value, &bits, sizeof(bits));
        Push(v);
        break;
      }
      case 'X':  // BINUNICODE
        Push(MakeText(PickleValue::Kind::kString, ReadString(ReadUint(4))));
        break;
      case 0x8c:  // SHORT_BINUNICODE
        Push(MakeText(PickleValue::Kind::kString, ReadString(ReadUint(1))));
        break;
      case 0x8d:  // BINUNICODE8
        Push(MakeText(PickleValue::Kind::kString, ReadString(ReadUint(8))));
        break;
      case 'T':  // BINSTRING (Python 2 str)
        Push(MakeText(PickleValue::Kind::kString, ReadString(ReadUint(4))));
        break;
      case 'U':  // SHORT_BINSTRING
        Push(MakeText(PickleValue::Kind::kString, ReadString(ReadUint(1))));
        break;
      case 'B':  // BINBYTES
        Push(MakeText(PickleValue::Kind::kBytes, ReadString(ReadUint(4))));
        break;
      case 'C':  // SHORT_BINBYTES
        Push(MakeText(PickleValue::Kind::kBytes, ReadString(ReadUint(1))));
        break;
      case 0x8e:  // BINBYTES8
        Push(MakeText(PickleValue::Kind::kBytes, ReadString(ReadUint(8))));
        break;
      case ')':  // EMPTY_TUPLE
        Push(Make(PickleValue::Kind::kTuple));
        break;
      case 't':  // TUPLE
        Push(MakeSequence(PickleValue::Kind::kTuple, PopMark()));
        break;
      case 0x85:  // TUPLE1
      case 0x86:  // TUPLE2
      case 0x87:  // TUPLE3
        Push(MakeSequence(PickleValue::Kind::kTuple, PopN(op - 0x84)));
        break;
      case ']':  // EMPTY_LIST
        Push(Make(PickleValue::Kind::kList));
        break;
      case 'l':  // LIST
        Push(MakeSequence(PickleValue::Kind::kList, PopMark()));
        break;
      case 'a': {  // APPEND
        PickleValuePtr item = Pop();
        TopContainer(PickleValue::Kind::kList, "APPEND").items.push_back(std::move(item));
        break;
      }
      case 'e': {  // APPENDS
        std::vector<PickleValuePtr> items = PopMark();
        auto& list = TopContainer(PickleValue::Kind::kList, "APPENDS").items;
        list.insert(list.end(), std::make_move_iterator(items.begin()),
                    std::make_move_iterator(items.end()));
        break;
      }
      case '}':  // EMPTY_DICT
        Push(Make(PickleValue::Kind::kDict));
        break;
      case 'd': {  // DICT
        auto dict = Make(PickleValue::Kind::kDict);
        SetItems(*dict, PopMark());
        Push(dict);
        break;
      }
      case 's': {  // SETITEM
        std::vector<PickleValuePtr> pair = PopN(2);
        SetItems(TopContainer(PickleValue::Kind::kDict, "SETITEM"), std::move(pair));
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<PickleValuePtr> flat = PopMark();
        SetItems(TopContainer(PickleValue::Kind::kDict, "SETITEMS"), std::move(flat));
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = ReadLine();
        std::string name = ReadLine();
        Push(ResolvePickleGlobal(module + "." + name, Where()));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PickleValuePtr name = Pop();
        PickleValuePtr module = Pop();
        if (module->kind != PickleValue::Kind::kString ||
            name->kind != PickleValue::Kind::kString) {
          Bad(ErrorCode::kDataLoss,
              "STACK_GLOBAL of " + module->Describe() + ", " + name->Describe());
        }
        Push(ResolvePickleGlobal(module->text + "." + name->text, Where()));
        break;
      }
      case 'R': {  // REDUCE
        PickleValuePtr args = Pop();
        PickleValuePtr callable = Pop();
        Push(CallPickleGlobal(*callable, *args, Where()));
        break;
      }
      case 'b': {  // BUILD
        PickleValuePtr state = Pop();
        const PickleValuePtr& target = Top();
        // An OrderedDict state_dict carries its `_metadata` (per-module versions) as instance
        // state; loading tensors does not need it.
        if (target->kind != PickleValue::Kind::kDict) {
          Bad(ErrorCode::kUnsupported, "BUILD on " + target->Describe() + " is outside the subset");
        }
        break;
      }
      case 'Q': {  // BINPERSID
        PickleValuePtr id = Pop();
        if (!persistent_load_) {
          Bad(ErrorCode::kDataLoss, "persistent id " + id->Describe() + " where none may appear");
        }
        PickleValuePtr storage = persistent_load_(*id);
        if (!storage || storage->kind != PickleValue::Kind::kStorage) {
          Bad(ErrorCode::kInternal, "persistent_load returned no storage");
        }
        Push(std::move(storage));
        break;
      }
      case 'q':  // BINPUT
        memo_[ReadUint(1)] = Top();
        break;
      case 'r':  // LONG_BINPUT
        memo_[ReadUint(4)] = Top();
        break;
      case 0x94:  // MEMOIZE
        memo_[memo_.size()] = Top();
        break;
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        const uint64_t index = ReadUint(op == 'h' ? 1 : 4);
        auto it = memo_.find(index);
        if (it == memo_.end()) {
          Bad(ErrorCode::kDataLoss, "memo index " + std::to_string(index) + " was never stored");
        }
        Push(it->second);
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        Bad(ErrorCode::kUnsupported,
            std::string("opcode ") + hex +
                (op >= 0x20 && op < 0x7f ? std::string(" ('") + static_cast<char>(op) + "')" : "") +
                " is outside the pickle subset a PyTorch state_dict uses");
      }
    }
  }
}

}  // namespace

PickleValue::~PickleValue() {
  std::vector<PickleValuePtr> pending;
  auto adopt = [&pending](PickleValue& v) {
    for (PickleValuePtr& item : v.items) pending.push_back(std::move(item));
    for (auto& [key, value] : v.entries) {
      pending.push_back(std::move(key));
      pending.push_back(std::move(value));
    }
    v.items.clear();
    v.entries.clear();
  };
  adopt(*this);
  while (!pending.empty()) {
    PickleValuePtr v = std::move(pending.back());
    pending.pop_back();
    // Only the last owner takes the children; shared values die with their final reference.
    if (v && v.use_count() == 1) adopt(*v);
  }
}

std::string PickleValue::Describe() const {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return bool_value ? "True" : "False";
    case Kind::kInt:
      return "int " + std::to_string(int_value);
    case Kind::kBigInt:
      return "int of " + std::to_string(text.size()) + " bytes";
    case Kind::kFloat:
      return "float " + std::to_string(float_value);
    case Kind::kString:
      return "str '" + (text.size() > 64 ? text.substr(0, 64) + "..." : text) + "'";
    case Kind::kBytes:
      return "bytes of length " + std::to_string(text.size());
    case Kind::kTuple:
      return "tuple of " + std::to_string(items.size());
    case Kind::kList:
      return "list of " + std::to_string(items.size());
    case Kind::kDict:
      return "dict of " + std::to_string(entries.size());
    case Kind::kGlobal:
      return "global " + text;
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

PickleValuePtr Unpickle(std::istream& in, uint64_t available_bytes, const std::string& source,
                        const PersistentLoadFn& persistent_load) {
  return Unpickler(in, available_bytes, source, persistent_load).Run();
}

}  // namespace hpsearch::core
