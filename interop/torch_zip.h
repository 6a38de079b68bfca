// A small zip reader: enough for PyTorch's checkpoint archives (torch.save
// since 1.6 writes a zip of `ARCHIVE/data.pkl`, `ARCHIVE/data/<key>` raw
// storages, `byteorder`, `version`, ...), and for any ordinary zip.
//
// Format (PKWARE APPNOTE 6.3): the end-of-central-directory record (EOCD,
// "PK\5\6", 22 bytes + comment) at the end of the file points at the
// central directory; each central entry ("PK\1\2", 46 bytes + name + extra
// + comment) gives method, CRC-32, sizes and the offset of its local header
// ("PK\3\4", 30 bytes + name + extra) which the data follows. Zip64: when a
// count/size/offset does not fit (0xFFFF / 0xFFFFFFFF), the zip64 EOCD
// locator ("PK\6\7", 20 bytes just before the EOCD) points at the zip64 EOCD
// ("PK\6\6") and each entry's extra field 0x0001 holds the 64-bit values.
// PyTorch's writer sets flag bit 3 (sizes in a data descriptor after the
// data, zeros in the local header), so sizes and CRC come from the central
// directory only; its local extra field "FB" pads the data to 64 bytes.
//
// Nothing is trusted: every offset and size is checked against the file
// length before use, the local header must agree with the central entry,
// entries may not overlap the central directory, the declared size of a
// deflate entry is bounded by deflate's maximum ratio (1032:1) before any
// allocation, and the CRC-32 of every entry read is checked.
// Errors: ctg::Error "<file>: <entry or field>: <what is wrong>".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ctg::interop {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0, size = 0;
  uint64_t local_offset = 0;  // of the local header
  uint64_t data_offset = 0;   // of the (compressed) data, from the local header
};

class ZipReader {
 public:
  // Parses the directory of `bytes`; `name` is used in error messages.
  ZipReader(std::vector<uint8_t> bytes, std::string name);
  // Reads the whole file, then parses it.
  static ZipReader open(const std::string& path);

  const std::string& name() const { return name_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const ZipEntry* find(const std::string& entry_name) const;
  // The entry's bytes, inflated if needed, CRC-checked.
  std::vector<uint8_t> read(const ZipEntry& e) const;
  // The same by name; throws naming the entry when it is absent.
  std::vector<uint8_t> read(const std::string& entry_name) const;

 private:
  void parse();
  std::vector<uint8_t> bytes_;
  std::string name_;
  std::vector<ZipEntry> entries_;
};

// True when the buffer starts with a local file header or an (empty-zip) EOCD.
bool looks_like_zip(const uint8_t* data, size_t size);
// The whole file; ctg::Error "<path>: cannot open/read: ..." on failure.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace ctg::interop
