// Walking an unpickled value tree (unpickle.h): short descriptions of values
// for reports, and the flattening of nested dicts into dotted keys.
#include <cstdio>
#include <set>

#include "engine/tensor.h"
#include "interop/unpickle.h"

namespace ctg::interop {
namespace {

std::string printable(const std::string& s, size_t max = 40) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > max ? out + "..." : out;
}

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxVisits = 10'000'000;

struct Walker {
  const Pickle& p;
  const std::string& name;
  std::vector<PickleLeaf>& tensors;
  std::vector<PickleLeaf>& others;
  std::set<std::string> keys;
  int64_t visits = 0;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(name + ": " + (key.empty() ? std::string("(root)") : "'" + printable(key, 200) + "'") + ": " + what);
  }
  static bool is_container(PyKind k) { return k == PyKind::dict || k == PyKind::list || k == PyKind::tuple; }

  void leaf(const std::string& key, uint32_t v) {
    if (!keys.insert(key).second) fail(key, "duplicate key");
    (p[v].kind == PyKind::tensor ? tensors : others).push_back({key, v});
  }
  void walk(const std::string& key, uint32_t v, int depth) {
    if (depth > kMaxDepth) fail(key, "nested deeper than " + std::to_string(kMaxDepth) + " levels (a cycle?)");
    if (++visits > kMaxVisits) fail(key, "more than 10 million values to visit (shared sub-trees?)");
    const PyValue& x = p[v];
    auto join = [&](const std::string& k) { return key.empty() ? k : key + "." + k; };
    if (x.kind == PyKind::dict) {
      for (auto& [k, child] : x.entries) {
        std::string ks;
        if (p[k].kind == PyKind::string) ks = p[k].text;
        else if (p[k].kind == PyKind::integer) ks = std::to_string(p[k].integer);
        else fail(key, "a dict key is a " + describe(p, k) + "; only str and int keys are supported");
        walk(join(ks), child, depth + 1);
      }
      return;
    }
    if (x.kind == PyKind::list || x.kind == PyKind::tuple) {
      bool deep = false;  // a list of numbers is one leaf; a list of tensors or dicts is walked
      for (uint32_t c : x.items) deep |= p[c].kind == PyKind::tensor || is_container(p[c].kind);
      if (deep) {
        for (size_t i = 0; i < x.items.size(); ++i) walk(join(std::to_string(i)), x.items[i], depth + 1);
        return;
      }
    }
    leaf(key, v);
  }
};

}  // namespace

const char* py_kind_name(PyKind k) {
  static const char* names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor"};
  return names[(int)k];
}

std::string describe(const Pickle& p, uint32_t v) {
  const PyValue& x = p[v];
  char buf[64];
  switch (x.kind) {
    case PyKind::none: return "None";
    case PyKind::boolean: return x.integer ? "bool True" : "bool False";
    case PyKind::integer: return "int " + std::to_string(x.integer);
    case PyKind::floating: std::snprintf(buf, sizeof buf, "float %.9g", x.real); return buf;
    case PyKind::string: return "str '" + printable(x.text) + "'";
    case PyKind::tuple: return "tuple of " + std::to_string(x.items.size());
    case PyKind::list: return "list of " + std::to_string(x.items.size());
    case PyKind::dict: return "dict of " + std::to_string(x.entries.size());
    case PyKind::global: return "global " + printable(x.text);
    case PyKind::storage: return "storage " + x.storage.type;
    case PyKind::tensor: {
      std::string dims;
      for (int64_t d : x.tensor.size) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
      return "tensor " + x.tensor.dtype + " [" + dims + "]";
    }
  }
  return "?";
}

void flatten(const Pickle& p, uint32_t root, const std::string& prefix, std::vector<PickleLeaf>& tensors,
             std::vector<PickleLeaf>& others, const std::string& name) {
  Walker w{p, name, tensors, others, {}, 0};
  w.walk(prefix, root, 0);
}

}  // namespace ctg::interop
