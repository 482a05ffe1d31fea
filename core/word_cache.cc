#include "core/word_cache.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>

namespace hpsearch::core {
namespace {

constexpr std::size_t kInitialSlots = 1024;
constexpr std::size_t kMaxArrayEntries = std::numeric_limits<std::uint32_t>::max();

}  // namespace

WordCache::WordCache(std::size_t capacity_words)
    : capacity_words_(capacity_words), slots_(kInitialSlots, Slot{0, 0, 0, 0, 0}) {}

std::uint64_t WordCache::Hash(std::string_view word) {
  return static_cast<std::uint64_t>(std::hash<std::string_view>()(word)) | 1;
}

WordCache::Slot* WordCache::FindSlot(std::string_view word, std::uint64_t hash) {
  const std::size_t mask = slots_.size() - 1;
  // The low bits are always 1, so probe from the high half of the hash.
  for (std::size_t i = (hash >> 20) & mask;; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (slot.hash == 0) return &slot;
    if (slot.hash == hash && slot.key_size == word.size() &&
        std::memcmp(keys_.data() + slot.key_offset, word.data(), word.size()) == 0) {
      return &slot;
    }
  }
}

bool WordCache::Lookup(std::string_view word, std::vector<std::int32_t>* ids) {
  if (word.size() > kMaxWordBytes) return false;
  const std::uint64_t hash = Hash(word);
  std::lock_guard<std::mutex> lock(mu_);
  const Slot* slot = FindSlot(word, hash);
  if (slot->hash == 0) return false;
  const std::int32_t* first = ids_.data() + slot->ids_offset;
  ids->insert(ids->end(), first, first + slot->id_count);
  return true;
}

void WordCache::Insert(std::string_view word, const std::int32_t* ids, std::size_t count) {
  if (word.size() > kMaxWordBytes) return;
  const std::uint64_t hash = Hash(word);
  std::lock_guard<std::mutex> lock(mu_);
  // The second bound keeps the 32-bit offsets valid whatever the capacity.
  if (size_ >= capacity_words_ || keys_.size() + word.size() > kMaxArrayEntries ||
      ids_.size() + count > kMaxArrayEntries) {
    ClearLocked();
  }
  if (2 * (size_ + 1) > slots_.size()) Grow();
  Slot* slot = FindSlot(word, hash);
  if (slot->hash != 0) return;  // another thread stored it meanwhile
  *slot =
      Slot{hash, static_cast<std::uint32_t>(keys_.size()), static_cast<std::uint32_t>(ids_.size()),
           static_cast<std::uint16_t>(word.size()), static_cast<std::uint16_t>(count)};
  keys_.append(word);
  ids_.insert(ids_.end(), ids, ids + count);
  ++size_;
}

void WordCache::Grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{0, 0, 0, 0, 0});
  old.swap(slots_);
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.hash == 0) continue;
    std::size_t i = (slot.hash >> 20) & mask;
    while (slots_[i].hash != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

void WordCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  ClearLocked();
}

void WordCache::ClearLocked() {
  std::fill(slots_.begin(), slots_.end(), Slot{0, 0, 0, 0, 0});
  keys_.clear();
  ids_.clear();
  size_ = 0;
}

std::size_t WordCache::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

}  // namespace hpsearch::core
