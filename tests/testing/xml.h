// A minimal XML reader for tests: checks that a document is well-formed (one root, tags nested and
// closed in order, attributes quoted and not repeated, only the five predefined and numeric entity
// references, no stray '<' or '&') and returns its element tree with decoded text and attributes.
// Not a validating parser and no DTDs: enough to prove that generated SVG/XML opens anywhere and to
// find elements in it. Header-only.
#pragma once

#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hpsearch::testing {

struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::string text;  // the decoded character data directly inside this element, concatenated
  std::vector<std::unique_ptr<XmlElement>> children;

  std::string Attribute(const std::string& key) const {
    auto it = attributes.find(key);
    return it == attributes.end() ? "" : it->second;
  }
  bool HasClass(const std::string& cls) const {
    std::string classes = " " + Attribute("class") + " ";
    return classes.find(" " + cls + " ") != std::string::npos;
  }
  // Every element below this one (depth first, document order) for which `match` is true.
  template <typename Match>
  void FindAll(const Match& match, std::vector<const XmlElement*>* out) const {
    for (const auto& child : children) {
      if (match(*child)) out->push_back(child.get());
      child->FindAll(match, out);
    }
  }
  std::vector<const XmlElement*> ByName(const std::string& element_name) const {
    std::vector<const XmlElement*> out;
    FindAll([&](const XmlElement& e) { return e.name == element_name; }, &out);
    return out;
  }
  std::vector<const XmlElement*> ByClass(const std::string& cls) const {
    std::vector<const XmlElement*> out;
    FindAll([&](const XmlElement& e) { return e.HasClass(cls); }, &out);
    return out;
  }
  // All text below this element, in document order.
  std::string AllText() const {
    std::string out = text;
    for (const auto& child : children) out += child->AllText();
    return out;
  }
};

class XmlReader {
 public:
  // The root element, or nullptr with error() saying what is wrong and at which byte.
  std::unique_ptr<XmlElement> Parse(const std::string& doc) {
    doc_ = &doc;
    pos_ = 0;
    error_.clear();
    SkipProlog();
    if (!error_.empty()) return nullptr;
    if (pos_ >= doc.size() || doc[pos_] != '<') return Fail("expected the root element");
    auto root = Element();
    if (!root) return nullptr;
    SkipMisc();
    if (!error_.empty()) return nullptr;
    if (pos_ != doc.size()) return Fail("content after the root element");
    return root;
  }
  const std::string& error() const { return error_; }

 private:
  std::unique_ptr<XmlElement> Fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    return nullptr;
  }
  bool StartsWith(const char* s) const { return doc_->compare(pos_, std::strlen(s), s) == 0; }
  void SkipSpace() {
    while (pos_ < doc_->size() && std::isspace(static_cast<unsigned char>((*doc_)[pos_]))) ++pos_;
  }
  bool SkipPast(const char* end) {
    size_t at = doc_->find(end, pos_);
    if (at == std::string::npos) return false;
    pos_ = at + std::strlen(end);
    return true;
  }
  // Whitespace, comments and processing instructions between top-level items.
  void SkipMisc() {
    while (true) {
      SkipSpace();
      if (StartsWith("<!--")) {
        if (!SkipPast("-->")) Fail("unterminated comment");
      } else if (StartsWith("<?")) {
        if (!SkipPast("?>")) Fail("unterminated processing instruction");
      } else {
        return;
      }
      if (!error_.empty()) return;
    }
  }
  void SkipProlog() {
    if (StartsWith("<?xml")) {
      if (!SkipPast("?>")) Fail("unterminated XML declaration");
    }
    SkipMisc();
    if (StartsWith("<!DOCTYPE")) Fail("DOCTYPE is not supported by this reader");
  }
  std::string Name() {
    size_t start = pos_;
    while (pos_ < doc_->size()) {
      char c = (*doc_)[pos_];
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '-' ||
          c == '.' || static_cast<unsigned char>(c) >= 0x80) {
        ++pos_;
      } else {
        break;
      }
    }
    if (start == pos_ || std::isdigit(static_cast<unsigned char>((*doc_)[start])) ||
        (*doc_)[start] == '-' || (*doc_)[start] == '.') {
      Fail("expected a name");
      return "";
    }
    return doc_->substr(start, pos_ - start);
  }
  // Decodes character data up to (not including) any character in `stop`.
  std::optional<std::string> CharData(const char* stop) {
    std::string out;
    while (pos_ < doc_->size() && std::strchr(stop, (*doc_)[pos_]) == nullptr) {
      char c = (*doc_)[pos_];
      if (c == '<') {
        Fail("'<' inside a value");
        return std::nullopt;
      }
      if (c != '&') {
        out += c;
        ++pos_;
        continue;
      }
      size_t semi = doc_->find(';', pos_);
      if (semi == std::string::npos || semi - pos_ > 10) {
        Fail("bare '&' (write &amp;)");
        return std::nullopt;
      }
      std::string ref = doc_->substr(pos_ + 1, semi - pos_ - 1);
      static const std::map<std::string, std::string> kNamed = {
          {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}};
      if (auto it = kNamed.find(ref); it != kNamed.end()) {
        out += it->second;
      } else if (ref.size() > 1 && ref[0] == '#') {
        unsigned long code = ref[1] == 'x' ? std::stoul(ref.substr(2), nullptr, 16)
                                           : std::stoul(ref.substr(1), nullptr, 10);
        if (code < 0x80) {
          out += static_cast<char>(code);
        } else {
          out += "?";  // tests only compare ASCII through numeric references
        }
      } else {
        Fail("unknown entity &" + ref + ";");
        return std::nullopt;
      }
      pos_ = semi + 1;
    }
    return out;
  }
  std::unique_ptr<XmlElement> Element() {
    ++pos_;  // '<'
    auto element = std::make_unique<XmlElement>();
    element->name = Name();
    if (!error_.empty()) return nullptr;
    while (true) {
      size_t before = pos_;
      SkipSpace();
      if (pos_ >= doc_->size()) return Fail("unterminated start tag <" + element->name);
      if (StartsWith("/>")) {
        pos_ += 2;
        return element;
      }
      if ((*doc_)[pos_] == '>') {
        ++pos_;
        break;
      }
      if (before == pos_) return Fail("expected whitespace before an attribute");
      std::string key = Name();
      if (!error_.empty()) return nullptr;
      SkipSpace();
      if (pos_ >= doc_->size() || (*doc_)[pos_] != '=') return Fail("expected '=' after " + key);
      ++pos_;
      SkipSpace();
      if (pos_ >= doc_->size() || ((*doc_)[pos_] != '"' && (*doc_)[pos_] != '\'')) {
        return Fail("attribute " + key + " is not quoted");
      }
      const char quote[2] = {(*doc_)[pos_++], 0};
      std::optional<std::string> value = CharData(quote);
      if (!value) return nullptr;
      if (pos_ >= doc_->size()) return Fail("unterminated attribute " + key);
      ++pos_;
      if (!element->attributes.emplace(key, *value).second) {
        return Fail("attribute " + key + " repeated");
      }
    }
    while (true) {
      std::optional<std::string> text = CharData("<");
      if (!text) return nullptr;
      element->text += *text;
      if (pos_ >= doc_->size()) return Fail("<" + element->name + "> is never closed");
      if (StartsWith("</")) {
        pos_ += 2;
        std::string closing = Name();
        if (closing != element->name) {
          return Fail("</" + closing + "> closes <" + element->name + ">");
        }
        SkipSpace();
        if (pos_ >= doc_->size() || (*doc_)[pos_] != '>') return Fail("expected '>'");
        ++pos_;
        return element;
      }
      if (StartsWith("<!--")) {
        if (!SkipPast("-->")) return Fail("unterminated comment");
        continue;
      }
      if (StartsWith("<![CDATA[")) {
        size_t end = doc_->find("]]>", pos_);
        if (end == std::string::npos) return Fail("unterminated CDATA");
        element->text += doc_->substr(pos_ + 9, end - pos_ - 9);
        pos_ = end + 3;
        continue;
      }
      auto child = Element();
      if (!child) return nullptr;
      element->children.push_back(std::move(child));
    }
  }

  const std::string* doc_ = nullptr;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace hpsearch::testing
