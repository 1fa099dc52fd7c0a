// tinyq — int8 quantisation for tiny ONNX models.
// SPDX-License-Identifier: BSD-3-Clause-Plus-Patent
#pragma once

// A small XML well-formedness checker for the gate's HTML report (written as XHTML): every
// element closes in order, attributes are quoted and unique, text holds no bare '<' and every
// '&' starts a known entity. Returns "" when well-formed, else what is wrong and where.

#include <set>
#include <string>
#include <vector>

namespace tinyq::test {

inline std::string xml_check(const std::string& doc) {
  std::vector<std::string> open;
  size_t i = 0, roots = 0;
  auto where = [&](size_t at) { return " at byte " + std::to_string(at); };
  auto check_entities = [&](size_t from, size_t to) -> std::string {
    for (size_t k = from; k < to; ++k) {
      if (doc[k] == '<') return "bare '<'" + where(k);
      if (doc[k] != '&') continue;
      size_t semi = doc.find(';', k);
      if (semi == std::string::npos || semi > to) return "unterminated entity" + where(k);
      std::string ent = doc.substr(k + 1, semi - k - 1);
      static const std::set<std::string> known{"amp", "lt", "gt", "quot", "apos"};
      bool numeric = ent.size() > 1 && ent[0] == '#';
      if (!known.count(ent) && !numeric) return "unknown entity &" + ent + ";" + where(k);
    }
    return "";
  };
  while (i < doc.size()) {
    size_t lt = doc.find('<', i);
    if (lt == std::string::npos) {
      if (auto e = check_entities(i, doc.size()); !e.empty()) return e;
      break;
    }
    if (auto e = check_entities(i, lt); !e.empty()) return e;
    if (doc.compare(lt, 4, "<!--") == 0) {
      size_t end = doc.find("-->", lt);
      if (end == std::string::npos) return "unterminated comment" + where(lt);
      i = end + 3;
      continue;
    }
    if (doc.compare(lt, 2, "<!") == 0 || doc.compare(lt, 2, "<?") == 0) {
      if (!open.empty()) return "declaration inside an element" + where(lt);
      size_t end = doc.find('>', lt);
      if (end == std::string::npos) return "unterminated declaration" + where(lt);
      i = end + 1;
      continue;
    }
    // A tag: find its end outside quoted attribute values.
    size_t k = lt + 1;
    char quote = 0;
    for (; k < doc.size(); ++k) {
      if (quote) {
        if (doc[k] == quote) quote = 0;
        else if (doc[k] == '<') return "'<' inside an attribute value" + where(k);
      } else if (doc[k] == '"' || doc[k] == '\'') {
        quote = doc[k];
      } else if (doc[k] == '>') {
        break;
      }
    }
    if (k >= doc.size()) return "unterminated tag" + where(lt);
    std::string tag = doc.substr(lt + 1, k - lt - 1);
    i = k + 1;
    if (!tag.empty() && tag[0] == '/') {
      std::string name = tag.substr(1);
      while (!name.empty() && name.back() == ' ') name.pop_back();
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? std::string("nothing") : "<" + open.back() + ">") + where(lt);
      open.pop_back();
      continue;
    }
    bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    size_t name_end = tag.find_first_of(" \t\n");
    std::string name = tag.substr(0, name_end);
    if (name.empty()) return "empty tag name" + where(lt);
    // Attributes: name="value" pairs, each name once.
    std::set<std::string> seen;
    size_t p = name_end == std::string::npos ? tag.size() : name_end;
    while (p < tag.size()) {
      while (p < tag.size() && (tag[p] == ' ' || tag[p] == '\t' || tag[p] == '\n')) ++p;
      if (p >= tag.size()) break;
      size_t eq = tag.find('=', p);
      if (eq == std::string::npos) return "attribute without value in <" + name + ">" + where(lt);
      std::string attr = tag.substr(p, eq - p);
      if (attr.find_first_of(" \t\n\"'") != std::string::npos) return "bad attribute name in <" + name + ">" + where(lt);
      if (!seen.insert(attr).second) return "duplicate attribute " + attr + " in <" + name + ">" + where(lt);
      if (eq + 1 >= tag.size() || (tag[eq + 1] != '"' && tag[eq + 1] != '\''))
        return "unquoted attribute " + attr + " in <" + name + ">" + where(lt);
      size_t close = tag.find(tag[eq + 1], eq + 2);
      if (close == std::string::npos) return "unterminated attribute " + attr + where(lt);
      p = close + 1;
    }
    if (open.empty()) ++roots;
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

}  // namespace tinyq::test
