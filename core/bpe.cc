#include "core/bpe.h"

#include <algorithm>
#include <limits>

namespace hpsearch::core {
namespace {

constexpr int kInitialSlotBits = 4;

// Up to this many symbols a linear scan for the best pair beats keeping a heap; above it the scan's
// O(n^2) would make long words (a run of 10^5 letters is one word) slow.
constexpr std::size_t kMaxScanSymbols = 48;

constexpr std::int32_t kNoMerge = std::numeric_limits<std::int32_t>::max();

// std heap functions build a max-heap; this order puts the lowest rank, then the leftmost pair, on
// top. A function object, not a function, so that the heap operations inline it.
struct LaterCandidate {
  bool operator()(const BpeScratch::Candidate& a, const BpeScratch::Candidate& b) const {
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.left_pos > b.left_pos;
  }
};

// Short words: the pairs' ranks sit in an array beside the symbols; each merge scans it for the
// lowest (first among equals), shifts the tail left by one and looks up only the two pairs it
// changed.
void MergeByScan(const BpeMergeTable& merges, std::vector<std::int32_t>* symbols) {
  std::int32_t* sym = symbols->data();
  std::size_t n = symbols->size();
  std::int32_t rank[kMaxScanSymbols];
  std::int32_t merged[kMaxScanSymbols];
  auto look_up = [&](std::size_t i) {
    const BpeMergeTable::Merge* merge = merges.Find(sym[i], sym[i + 1]);
    rank[i] = merge != nullptr ? merge->rank : kNoMerge;
    merged[i] = merge != nullptr ? merge->merged : -1;
  };
  for (std::size_t i = 0; i + 1 < n; ++i) look_up(i);
  while (n > 1) {
    std::size_t best = 0;
    for (std::size_t i = 1; i + 1 < n; ++i) {
      if (rank[i] < rank[best]) best = i;
    }
    if (rank[best] == kNoMerge) break;
    sym[best] = merged[best];
    for (std::size_t i = best + 1; i + 1 < n; ++i) {
      sym[i] = sym[i + 1];
      rank[i] = rank[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    if (best > 0) look_up(best - 1);
    if (best + 1 < n) look_up(best);
  }
  symbols->resize(n);
}

}  // namespace

BpeMergeTable::BpeMergeTable()
    : slots_(std::size_t{1} << kInitialSlotBits, Slot{kEmptyKey, {0, 0}}),
      mask_((std::size_t{1} << kInitialSlotBits) - 1),
      shift_(64 - kInitialSlotBits) {}

bool BpeMergeTable::Add(std::int32_t left, std::int32_t right, std::int32_t merged) {
  if (Find(left, right) != nullptr) return false;
  // Keep the load factor under one half so probe runs stay short.
  if (2 * (size_ + 1) > slots_.size()) Grow();
  const std::uint64_t key = Key(left, right);
  std::size_t slot = Hash(key);
  while (slots_[slot].key != kEmptyKey) slot = (slot + 1) & mask_;
  slots_[slot] = Slot{key, Merge{static_cast<std::int32_t>(size_), merged}};
  ++size_;
  return true;
}

void BpeMergeTable::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{kEmptyKey, {0, 0}});
  mask_ = slots_.size() - 1;
  --shift_;
  for (const Slot& s : old) {
    if (s.key == kEmptyKey) continue;
    std::size_t slot = Hash(s.key);
    while (slots_[slot].key != kEmptyKey) slot = (slot + 1) & mask_;
    slots_[slot] = s;
  }
}

void ApplyBpeMerges(const BpeMergeTable& merges, std::vector<std::int32_t>* symbols,
                    BpeScratch* scratch) {
  if (symbols->size() < 2) return;
  if (symbols->size() <= kMaxScanSymbols) {
    MergeByScan(merges, symbols);
    return;
  }
  std::vector<std::int32_t>& sym = *symbols;
  const auto n = static_cast<std::int32_t>(sym.size());
  // A doubly linked list over the symbols; a merged-away symbol gets id -1.
  std::vector<std::int32_t>& next = scratch->next;
  std::vector<std::int32_t>& prev = scratch->prev;
  std::vector<BpeScratch::Candidate>& heap = scratch->heap;
  next.resize(n);
  prev.resize(n);
  heap.clear();
  for (std::int32_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  auto push = [&](std::int32_t left_pos, std::int32_t right_pos) {
    const BpeMergeTable::Merge* merge = merges.Find(sym[left_pos], sym[right_pos]);
    if (merge == nullptr) return;
    heap.push_back(
        {merge->rank, left_pos, right_pos, sym[left_pos], sym[right_pos], merge->merged});
    std::push_heap(heap.begin(), heap.end(), LaterCandidate());
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) push(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), LaterCandidate());
    const BpeScratch::Candidate c = heap.back();
    heap.pop_back();
    // A candidate is stale once either side took part in another merge: token ids only ever grow
    // into longer tokens, so equal ids and adjacency mean the very same pair is still there.
    if (sym[c.left_pos] != c.left_id || next[c.left_pos] != c.right_pos ||
        sym[c.right_pos] != c.right_id) {
      continue;
    }
    sym[c.left_pos] = c.merged;
    sym[c.right_pos] = -1;
    const std::int32_t after = next[c.right_pos];
    next[c.left_pos] = after;
    if (after >= 0) prev[after] = c.left_pos;
    if (prev[c.left_pos] >= 0) push(prev[c.left_pos], c.left_pos);
    if (after >= 0) push(c.left_pos, after);
  }
  sym.erase(std::remove(sym.begin(), sym.end(), -1), sym.end());
}

}  // namespace hpsearch::core
