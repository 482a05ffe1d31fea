#include "core/bpe.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/catch_torch.h"

#include "core/tokenizer.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using Ids = std::vector<std::int32_t>;

Ids Merge(const BpeMergeTable& merges, Ids symbols) {
  BpeScratch scratch;
  ApplyBpeMerges(merges, &symbols, &scratch);
  return symbols;
}

// The definition, slowly: merge the lowest-rank adjacent pair (the leftmost among equals) until
// none is left.
Ids ReferenceMerge(const BpeMergeTable& merges, Ids symbols) {
  while (true) {
    std::size_t best = symbols.size();
    std::int32_t best_rank = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      const BpeMergeTable::Merge* merge = merges.Find(symbols[i], symbols[i + 1]);
      if (merge != nullptr && (best == symbols.size() || merge->rank < best_rank)) {
        best = i;
        best_rank = merge->rank;
      }
    }
    if (best == symbols.size()) return symbols;
    symbols[best] = merges.Find(symbols[best], symbols[best + 1])->merged;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

TEST_CASE("BpeMergeTable finds what was added, ranked by order", "[core][bpe]") {
  BpeMergeTable table;
  REQUIRE(table.Find(1, 2) == nullptr);
  REQUIRE(table.Add(1, 2, 10));
  REQUIRE(table.Add(2, 1, 11));
  REQUIRE_FALSE(table.Add(1, 2, 12));  // the first rank of a pair stays
  REQUIRE(table.size() == 2);
  REQUIRE(table.Find(1, 2)->rank == 0);
  REQUIRE(table.Find(1, 2)->merged == 10);
  REQUIRE(table.Find(2, 1)->rank == 1);
  REQUIRE(table.Find(2, 2) == nullptr);
  // Growing keeps every entry.
  for (std::int32_t i = 0; i < 5000; ++i) REQUIRE(table.Add(100 + i, 7, 20000 + i));
  REQUIRE(table.size() == 5002);
  for (std::int32_t i = 0; i < 5000; ++i) {
    const BpeMergeTable::Merge* merge = table.Find(100 + i, 7);
    REQUIRE(merge != nullptr);
    REQUIRE(merge->rank == i + 2);
    REQUIRE(merge->merged == 20000 + i);
  }
  REQUIRE(table.Find(7, 100) == nullptr);
}

TEST_CASE("ApplyBpeMerges merges lowest rank first, leftmost among equals", "[core][bpe]") {
  // Tokens: a=0 b=1 c=2 ab=3 abc=4 bc=5 aa=6.
  BpeMergeTable table;
  table.Add(0, 1, 3);  // a b   rank 0
  table.Add(3, 2, 4);  // ab c  rank 1
  table.Add(1, 2, 5);  // b c   rank 2
  table.Add(0, 0, 6);  // a a   rank 3
  CHECK(Merge(table, {}) == Ids{});
  CHECK(Merge(table, {0}) == Ids{0});
  CHECK(Merge(table, {0, 1, 2}) == Ids{4});
  CHECK(Merge(table, {1, 2}) == Ids{5});
  CHECK(Merge(table, {0, 0, 0}) == Ids{6, 0});
  CHECK(Merge(table, {0, 0, 0, 0}) == Ids{6, 6});
  CHECK(Merge(table, {2, 0, 1, 2, 1, 2}) == Ids{2, 4, 5});
  CHECK(Merge(table, {0, 0, 1}) == Ids{0, 3});  // "a b" outranks "a a"
}

TEST_CASE("ApplyBpeMerges agrees with the definition on GPT-2's merges", "[core][bpe]") {
  const Gpt2Tokenizer tokenizer =
      Gpt2Tokenizer::FromDirectory((hpsearch::testing::SourceDir() / "data" / "gpt2").string());
  std::vector<std::int32_t> byte_ids(256, -1);
  for (std::int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    const std::string& bytes = tokenizer.TokenBytes(id);
    if (bytes.size() == 1) byte_ids[static_cast<unsigned char>(bytes[0])] = id;
  }
  // Long words over a few frequent letters make long, tangled merge sequences with many equal-rank
  // ties.
  std::mt19937 rng(1234);
  for (const std::string alphabet : {"aeinrst", "ab", "a", "0123456789", "e \n"}) {
    std::uniform_int_distribution<std::size_t> letter(0, alphabet.size() - 1);
    std::uniform_int_distribution<int> length(2, 300);
    for (int trial = 0; trial < 40; ++trial) {
      Ids symbols;
      for (int n = length(rng); n > 0; --n) {
        symbols.push_back(byte_ids[static_cast<unsigned char>(alphabet[letter(rng)])]);
      }
      INFO("alphabet \"" << alphabet << "\", " << symbols.size() << " bytes");
      REQUIRE(Merge(tokenizer.merge_table(), symbols) ==
              ReferenceMerge(tokenizer.merge_table(), symbols));
    }
  }
}

}  // namespace
}  // namespace hpsearch::core
