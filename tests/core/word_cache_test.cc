#include "core/word_cache.h"

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "core/catch_torch.h"

namespace hpsearch::core {
namespace {

using Ids = std::vector<std::int32_t>;

Ids CachedIds(WordCache& cache, const std::string& word) {
  Ids ids = {-7};  // Lookup appends
  if (!cache.Lookup(word, &ids)) return {};
  REQUIRE(ids.front() == -7);
  return Ids(ids.begin() + 1, ids.end());
}

TEST_CASE("WordCache returns what was stored and nothing else", "[core][word_cache]") {
  WordCache cache(100);
  Ids ids;
  REQUIRE_FALSE(cache.Lookup("hello", &ids));
  REQUIRE(ids.empty());
  const Ids hello = {31373};
  const Ids world = {995, 1, 2};
  cache.Insert("hello", hello.data(), hello.size());
  cache.Insert(" world", world.data(), world.size());
  REQUIRE(CachedIds(cache, "hello") == hello);
  REQUIRE(CachedIds(cache, " world") == world);
  REQUIRE_FALSE(cache.Lookup("hell", &ids));
  REQUIRE_FALSE(cache.Lookup("world", &ids));
  // A second insert of a word keeps the first ids.
  cache.Insert("hello", world.data(), world.size());
  REQUIRE(CachedIds(cache, "hello") == hello);
  REQUIRE(cache.size() == 2);
}

TEST_CASE("WordCache grows, then empties itself at capacity", "[core][word_cache]") {
  WordCache cache(5000);
  for (std::int32_t i = 0; i < 5000; ++i) {
    const Ids ids = {i, i + 1};
    cache.Insert("w" + std::to_string(i), ids.data(), ids.size());
  }
  REQUIRE(cache.size() == 5000);
  for (std::int32_t i = 0; i < 5000; ++i)
    REQUIRE(CachedIds(cache, "w" + std::to_string(i)) == Ids{i, i + 1});
  const Ids one = {1};
  cache.Insert("one more", one.data(), one.size());
  REQUIRE(cache.size() == 1);
  REQUIRE(CachedIds(cache, "one more") == one);
  Ids ids;
  REQUIRE_FALSE(cache.Lookup("w0", &ids));
  cache.Clear();
  REQUIRE(cache.size() == 0);
  REQUIRE_FALSE(cache.Lookup("one more", &ids));
}

TEST_CASE("WordCache does not store words over its size limit", "[core][word_cache]") {
  WordCache cache(10);
  const std::string long_word(WordCache::kMaxWordBytes + 1, 'a');
  const Ids ids = {1, 2, 3};
  cache.Insert(long_word, ids.data(), ids.size());
  Ids found;
  REQUIRE_FALSE(cache.Lookup(long_word, &found));
  const std::string longest(WordCache::kMaxWordBytes, 'a');
  cache.Insert(longest, ids.data(), ids.size());
  REQUIRE(CachedIds(cache, longest) == ids);
}

TEST_CASE("WordCache serves several threads at once", "[core][word_cache]") {
  WordCache cache(300);  // small enough to be emptied while the threads run
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, &wrong, t] {
      for (std::int32_t i = 0; i < 20000; ++i) {
        const std::int32_t key = (i * 7 + t) % 1000;
        const std::string word = "word" + std::to_string(key);
        Ids ids;
        if (cache.Lookup(word, &ids)) {
          if (ids != Ids{key, -key}) ++wrong[t];
        } else {
          const Ids value = {key, -key};
          cache.Insert(word, value.data(), value.size());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  REQUIRE(wrong == std::vector<int>(4, 0));
}

}  // namespace
}  // namespace hpsearch::core
