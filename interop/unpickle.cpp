// The restricted unpickler's machine (what it accepts: unpickle.h). As in
// pickle: a value stack, a stack of MARK positions into it, and a memo
// (index → value). Opcode meanings follow CPython's Lib/pickletools.py.
#include "interop/unpickle.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "engine/tensor.h"

namespace ctg::interop {
namespace {

// A state dict needs about 25 values per tensor; this bounds the memory a
// hostile pickle can make us spend (~300 bytes a value) to a few hundred MB.
constexpr size_t kMaxValues = size_t(1) << 20;

// pickletools' name of every opcode, for messages: "BINPUT (0x71)".
std::string opcode_name(uint8_t op) {
  static const std::unordered_map<uint8_t, const char*> names = {
      {0x80, "PROTO"}, {0x95, "FRAME"}, {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"},
      {'}', "EMPTY_DICT"}, {']', "EMPTY_LIST"}, {')', "EMPTY_TUPLE"}, {0x85, "TUPLE1"}, {0x86, "TUPLE2"},
      {0x87, "TUPLE3"}, {'t', "TUPLE"}, {'s', "SETITEM"}, {'u', "SETITEMS"}, {'a', "APPEND"}, {'e', "APPENDS"},
      {'J', "BININT"}, {'K', "BININT1"}, {'M', "BININT2"}, {0x8a, "LONG1"}, {'G', "BINFLOAT"}, {0x88, "NEWTRUE"},
      {0x89, "NEWFALSE"}, {'N', "NONE"}, {'X', "BINUNICODE"}, {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"},
      {'q', "BINPUT"}, {'r', "LONG_BINPUT"}, {0x94, "MEMOIZE"}, {'h', "BINGET"}, {'j', "LONG_BINGET"},
      {'c', "GLOBAL"}, {0x93, "STACK_GLOBAL"}, {'R', "REDUCE"}, {'b', "BUILD"}, {'Q', "BINPERSID"},
      // refused ones
      {'i', "INST"}, {'o', "OBJ"}, {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"}, {'P', "PERSID"}, {'I', "INT"},
      {'L', "LONG"}, {'S', "STRING"}, {'V', "UNICODE"}, {'F', "FLOAT"}, {'p', "PUT"}, {'g', "GET"},
      {'U', "SHORT_BINSTRING"}, {'T', "BINSTRING"}, {'B', "BINBYTES"}, {'C', "SHORT_BINBYTES"},
      {0x8e, "BINBYTES8"}, {0x8b, "LONG4"}, {0x82, "EXT1"}, {0x83, "EXT2"}, {0x84, "EXT4"}, {0x8f, "EMPTY_SET"},
      {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {'l', "LIST"}, {'d', "DICT"}, {'2', "DUP"}, {0x96, "BYTEARRAY8"},
      {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}};
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", op);
  auto it = names.find(op);
  return it != names.end() ? std::string(it->second) + " (" + hex + ")" : std::string("unknown opcode ") + hex;
}

// Printable, bounded copy of untrusted text for messages.
std::string printable(const std::string& s, size_t max = 60) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > max ? out + "..." : out;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* d, size_t n, const std::string& name) : d_(d), n_(n), name_(name) {}
  Pickle run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const std::string op = op_pos_ < n_ ? opcode_name(d_[op_pos_]) : "end of data";
    throw Error(name_ + ": byte " + std::to_string(op_pos_) + ": " + op + ": " + what);
  }
  const uint8_t* take(uint64_t k) {
    if (k > n_ - pos_) fail("truncated: needs " + std::to_string(k) + " bytes, " + std::to_string(n_ - pos_) + " left");
    const uint8_t* p = d_ + pos_;
    pos_ += (size_t)k;
    return p;
  }
  uint64_t le(int k) {  // little-endian unsigned of k bytes
    const uint8_t* p = take((uint64_t)k);
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; --i) v = v << 8 | p[i];
    return v;
  }
  uint32_t make(PyKind k) {
    if (out_.values.size() >= kMaxValues) fail("more than " + std::to_string(kMaxValues) + " values; not a state dict");
    out_.values.emplace_back();
    out_.values.back().kind = k;
    return (uint32_t)(out_.values.size() - 1);
  }
  PyValue& val(uint32_t i) { return out_.values[i]; }
  std::string kind(uint32_t i) { return py_kind_name(val(i).kind); }
  void push(uint32_t v) { stack_.push_back(v); }
  // The top of the stack above the innermost MARK.
  uint32_t top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  uint32_t pop() {
    const uint32_t v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    std::vector<uint32_t> items(stack_.begin() + (std::ptrdiff_t)marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  uint32_t make_int(int64_t v) {
    const uint32_t x = make(PyKind::integer);
    val(x).integer = v;
    return x;
  }
  uint32_t make_string(uint64_t len) {
    const uint8_t* p = take(len);
    const uint32_t v = make(PyKind::string);
    val(v).text.assign((const char*)p, (size_t)len);
    return v;
  }
  uint32_t make_tuple(std::vector<uint32_t> items) {
    const uint32_t v = make(PyKind::tuple);
    val(v).items = std::move(items);
    return v;
  }
  uint32_t make_global(const std::string& module, const std::string& name) {
    const std::string g = module + "." + name;
    if (!detail::allowed_global(g)) fail("global '" + printable(g) + "' is not allowed (only what a state dict holds)");
    const uint32_t v = make(PyKind::global);
    val(v).text = g;
    return v;
  }
  std::string line() {  // GLOBAL's "module\n" and "name\n"
    const size_t start = pos_;
    while (pos_ < n_ && d_[pos_] != '\n' && pos_ - start < 256) ++pos_;
    if (pos_ >= n_ || d_[pos_] != '\n') fail("unterminated or overlong name");
    return std::string((const char*)d_ + start, (pos_++) - start);
  }
  void memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("memo key " + std::to_string(k) + " was never stored");
    push(it->second);
  }
  void set_items(const std::vector<uint32_t>& kv) {  // SETITEM(S) into the dict below
    if (kv.size() % 2) fail("odd number of keys and values");
    const uint32_t dict = top();
    if (val(dict).kind != PyKind::dict) fail("target is a " + kind(dict) + ", not a dict");
    for (size_t i = 0; i < kv.size(); i += 2) val(dict).entries.emplace_back(kv[i], kv[i + 1]);
  }
  void append(const std::vector<uint32_t>& items) {  // APPEND(S) to the list below
    const uint32_t list = top();
    if (val(list).kind != PyKind::list) fail("target is a " + kind(list) + ", not a list");
    val(list).items.insert(val(list).items.end(), items.begin(), items.end());
  }
  void reduce() {
    const uint32_t args = pop(), fn = pop();
    if (val(fn).kind != PyKind::global) fail("the callable is a " + kind(fn) + ", not a global");
    if (val(args).kind != PyKind::tuple) fail("the arguments are a " + kind(args) + ", not a tuple");
    const std::vector<uint32_t> a = val(args).items;
    const std::string g = val(fn).text;
    try {
      push(detail::torch_call(out_, g, a));
    } catch (const Error& e) {
      fail(e.what());
    }
  }
  void persistent_load() {
    const uint32_t pid = pop();
    try {
      push(detail::torch_persistent_load(out_, pid));
    } catch (const Error& e) {
      fail(e.what());
    }
  }

  const uint8_t* d_;
  size_t n_, pos_ = 0, op_pos_ = 0;
  std::string name_;
  Pickle out_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, uint32_t> memo_;
};

Pickle Unpickler::run() {
  if (n_ >= (size_t)1 << 31) throw Error(name_ + ": pickle of " + std::to_string(n_) + " bytes is too large");
  while (pos_ < n_) {
    op_pos_ = pos_;
    const uint8_t op = d_[pos_++];
    switch (op) {
      case 0x80: if (le(1) > 5) fail("protocol above 5"); break;
      case 0x95: if (le(8) > n_ - pos_) fail("frame runs past the end"); break;  // FRAME: a size hint
      case '(': marks_.push_back(stack_.size()); break;
      case '.': out_.root = pop(); return std::move(out_);
      case '0': pop(); break;
      case '1': pop_mark(); break;
      case '}': push(make(PyKind::dict)); break;
      case ']': push(make(PyKind::list)); break;
      case ')': push(make_tuple({})); break;
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        std::vector<uint32_t> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(make_tuple(std::move(items)));
        break;
      }
      case 't': push(make_tuple(pop_mark())); break;
      case 's': { const uint32_t v = pop(), k = pop(); set_items({k, v}); break; }
      case 'u': set_items(pop_mark()); break;
      case 'a': { const uint32_t v = pop(); append({v}); break; }
      case 'e': append(pop_mark()); break;
      case 'J': push(make_int((int32_t)(uint32_t)le(4))); break;
      case 'K': push(make_int((int64_t)le(1))); break;
      case 'M': push(make_int((int64_t)le(2))); break;
      case 0x8a: {  // LONG1: n bytes of little-endian two's complement
        const int k = (int)le(1);
        if (k > 8) fail("integer of " + std::to_string(k) + " bytes does not fit in 64 bits");
        const uint64_t u = k ? le(k) : 0;
        const bool negative = k > 0 && k < 8 && (u >> (8 * k - 1));
        push(make_int(negative ? (int64_t)(u | (~0ull << (8 * k))) : (int64_t)u));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | p[i];
        const uint32_t x = make(PyKind::floating);
        std::memcpy(&val(x).real, &bits, 8);
        push(x);
        break;
      }
      case 0x88: case 0x89: {
        const uint32_t x = make(PyKind::boolean);
        val(x).integer = op == 0x88;
        push(x);
        break;
      }
      case 'N': push(make(PyKind::none)); break;
      case 'X': push(make_string(le(4))); break;
      case 0x8c: push(make_string(le(1))); break;
      case 0x8d: push(make_string(le(8))); break;
      case 'q': { const uint64_t k = le(1); memo_[k] = top(); break; }
      case 'r': { const uint64_t k = le(4); memo_[k] = top(); break; }
      case 0x94: { const uint64_t k = memo_.size(); memo_[k] = top(); break; }
      case 'h': memo_get(le(1)); break;
      case 'j': memo_get(le(4)); break;
      case 'c': { const std::string module = line(), name = line(); push(make_global(module, name)); break; }
      case 0x93: {  // STACK_GLOBAL
        const uint32_t name = pop(), module = pop();
        if (val(name).kind != PyKind::string || val(module).kind != PyKind::string) fail("module or name is not a str");
        push(make_global(val(module).text, val(name).text));
        break;
      }
      case 'R': reduce(); break;
      case 'b':  // BUILD: an OrderedDict's state ({'_metadata': ...}) is an attribute, ignored
        pop();
        if (val(top()).kind != PyKind::dict) fail("only a dict's state can be set, not a " + kind(top()) + "'s");
        break;
      case 'Q': persistent_load(); break;
      default: fail("is not allowed in a state dict");
    }
  }
  op_pos_ = n_;
  fail("pickle ends without STOP (truncated?)");
}

}  // namespace

Pickle unpickle(const uint8_t* data, size_t size, const std::string& name) { return Unpickler(data, size, name).run(); }

}  // namespace ctg::interop
