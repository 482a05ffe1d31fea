// WordCache remembers the token ids of words a tokenizer has already encoded, so that a repeated
// word skips the byte-pair merges. Keys are the words' bytes; all keys and ids live
// in two flat arrays indexed by an open-addressing table, so an insert allocates nothing once the
// arrays have grown.
//
// Bounded: when `capacity_words` words are stored, the next insert empties the cache and starts
// over (cheap, and a tokenizer's working set of words is far smaller than the capacity in
// practice); not an LRU.
//
// Thread-safety: every method locks an internal mutex, held only for one lookup, insert or clear,
// so one cache may be shared by many encoding threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hpsearch::core {

class WordCache {
 public:
  // Words longer than this are never stored: they are rare and a single one could hold much memory.
  static constexpr std::size_t kMaxWordBytes = 128;

  // REQUIRES: capacity_words > 0.
  explicit WordCache(std::size_t capacity_words);

  // Appends the stored ids of `word` to `*ids` and returns true, or returns false when `word` is
  // absent.
  bool Lookup(std::string_view word, std::vector<std::int32_t>* ids);

  // Stores the `count` ids of `word`; a word already present, or longer than kMaxWordBytes, is left
  // alone.
  void Insert(std::string_view word, const std::int32_t* ids, std::size_t count);

  void Clear();

  std::size_t size();

 private:
  struct Slot {
    std::uint64_t hash;  // 0 marks an empty slot (real hashes get their low bit set)
    std::uint32_t key_offset;
    std::uint32_t ids_offset;
    std::uint16_t key_size;
    std::uint16_t id_count;
  };

  static std::uint64_t Hash(std::string_view word);
  // The slot holding `word`, or the empty slot where it would go. REQUIRES: mu_ held.
  Slot* FindSlot(std::string_view word, std::uint64_t hash);
  // Doubles the table. REQUIRES: mu_ held.
  void Grow();
  // Empties the cache. REQUIRES: mu_ held.
  void ClearLocked();

  const std::size_t capacity_words_;
  std::mutex mu_;
  std::vector<Slot> slots_;        // guarded by mu_; size a power of two, at most half full
  std::string keys_;               // guarded by mu_; the stored words, back to back
  std::vector<std::int32_t> ids_;  // guarded by mu_; their ids, back to back
  std::size_t size_ = 0;           // guarded by mu_
};

}  // namespace hpsearch::core
