// Byte-pair encoding over token ids: BpeMergeTable maps a pair of adjacent token ids to the merge's
// rank and the id of the merged token; ApplyBpeMerges merges a word's symbols the way GPT-2 does.
//
// Thread-safety: a BpeMergeTable is immutable once filled, so const use from many threads is safe;
// Add is not thread-safe. ApplyBpeMerges touches only its arguments (the scratch is per caller,
// e.g. per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hpsearch::core {

class BpeMergeTable {
 public:
  struct Merge {
    std::int32_t rank;    // lower merges first: GPT-2's rank is the merge's line in merges.txt
    std::int32_t merged;  // id of the token the pair becomes
  };

  BpeMergeTable();

  // Adds the merge left + right -> merged with rank = the number of merges added so far. Returns
  // false and changes nothing when the pair is already present (the earlier, lower rank stays).
  // REQUIRES: left, right, merged >= 0.
  bool Add(std::int32_t left, std::int32_t right, std::int32_t merged);

  // The merge of the pair (left, right), or nullptr when the pair never merges.
  const Merge* Find(std::int32_t left, std::int32_t right) const {
    const std::uint64_t key = Key(left, right);
    for (std::size_t slot = Hash(key);; slot = (slot + 1) & mask_) {
      const Slot& s = slots_[slot];
      if (s.key == key) return &s.merge;
      if (s.key == kEmptyKey) return nullptr;
    }
  }

  std::size_t size() const { return size_; }

 private:
  // Open addressing with linear probing: a lookup is one multiply and usually one cache line, which
  // matters because a cold word costs a handful of lookups per byte.
  struct Slot {
    std::uint64_t key;
    Merge merge;
  };
  static constexpr std::uint64_t kEmptyKey =
      ~std::uint64_t{0};  // ids are non-negative: never a real key

  static std::uint64_t Key(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }
  std::size_t Hash(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void Grow();

  std::vector<Slot> slots_;
  std::size_t mask_;
  int shift_;
  std::size_t size_ = 0;
};

// Reusable buffers for ApplyBpeMerges, so encoding many words allocates only while the buffers
// grow.
struct BpeScratch {
  struct Candidate {
    std::int32_t rank;
    std::int32_t left_pos;
    std::int32_t right_pos;
    std::int32_t left_id;
    std::int32_t right_id;
    std::int32_t merged;
  };
  std::vector<std::int32_t> next;
  std::vector<std::int32_t> prev;
  std::vector<Candidate> heap;
};

// Merges `*symbols` (token ids of one word, in order) in place: repeatedly the adjacent pair of
// lowest rank, the leftmost one among equal ranks, until no adjacent pair has a merge. This is
// GPT-2's BPE as Hugging Face tokenizers and tiktoken compute it. Short words (the usual case)
// merge by a linear scan over cached pair ranks; long ones through a heap in O(n log n) for n
// symbols, so a pathological word (10^6 letters without a space) stays cheap.
void ApplyBpeMerges(const BpeMergeTable& merges, std::vector<std::int32_t>* symbols,
                    BpeScratch* scratch);

}  // namespace hpsearch::core
