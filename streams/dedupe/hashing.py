"""Fixed 64-bit hashes of tokens and shingles, vectorised with numpy over a whole batch.

These functions define the checkpoint format: a signature stored today must equal the one
computed for the same text after any restart or library upgrade, so nothing here depends on a
library's hash (Python's ``hash`` is salted per process, datasketch's and rensa's are theirs
to change). The constants below are frozen; changing any of them is a new HASH_SCHEME.

- mix64: the SplitMix64 finaliser (a bijection on 64-bit words with full avalanche).
- token hash: the token's UTF-8 bytes in 8-byte little-endian chunks, zero-padded:
  ``h = mix64(chunk[0] ^ length * TOKEN_SEED)``, then ``h = mix64(h ^ chunk[i])`` for the rest. Tokens longer than LONG_TOKEN bytes
  (base64 blobs, minified code) are hashed with BLAKE2b-64 instead, one at a time, so a rare
  long token cannot turn the vectorised loop into hundreds of passes.
- shingle hash: ``mix64(sum_i token_hash[i] * SHINGLE_MUL[i])`` over the shingle's tokens.
"""
from __future__ import annotations

import hashlib

import numpy as np

HASH_SCHEME = "splitmix64-chunk8-v1"
LONG_TOKEN = 64
TOKEN_SEED = np.uint64(0x9E3779B97F4A7C15)
EMPTY_SHINGLE = np.uint64(0x2545F4914F6CDD1D)   # the shingle of a text without tokens
PAD_TOKEN = np.uint64(0x5851F42D4C957F2D)       # stands for missing tokens of a short text
SHINGLE_MUL = np.array([0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB,
                        0x8EBC6AF09C88C6E3, 0x589965CC75374CC3, 0x1D8E4E27C47D124F,
                        0xCA5A826395121157, 0x9E3779B97F4A7C55], dtype=np.uint64)
MAX_SHINGLE = len(SHINGLE_MUL)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise; works in place on a uint64 array it owns."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def mix64_int(z: int) -> int:
    """The same on one Python int (reference and seeds)."""
    mask = (1 << 64) - 1
    z &= mask
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & mask
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def token_hash_reference(token: str) -> int:
    """One token's hash, in plain Python: the definition the vectorised code must match."""
    data = token.encode("utf-8")
    if len(data) > LONG_TOKEN:
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    h = mix64_int(int.from_bytes(data[:8], "little") ^ (len(data) * int(TOKEN_SEED)))
    for i in range(8, len(data), 8):
        h = mix64_int(h ^ int.from_bytes(data[i:i + 8], "little"))
    return h


def shingle_hash_reference(token_hashes: list[int], size: int) -> int:
    """One shingle's hash from its token hashes (PAD_TOKEN fills a short text's shingle)."""
    mask = (1 << 64) - 1
    padded = list(token_hashes) + [int(PAD_TOKEN)] * (size - len(token_hashes))
    acc = sum(h * int(m) for h, m in zip(padded, SHINGLE_MUL)) & mask
    return mix64_int(acc)


def token_bytes(raw: np.ndarray) -> np.ndarray:
    """Which bytes of a normalised buffer belong to tokens: ASCII [0-9_a-z] and every byte of
    a multi-byte character (normalise leaves only word characters outside ASCII). Comparisons,
    because a 256-entry table lookup is 5x slower."""
    is_token = (raw - np.uint8(97)) < 26
    is_token |= (raw - np.uint8(48)) < 10
    is_token |= raw == 95
    is_token |= raw >= 128
    return is_token


def tokenise(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes of a NUL-separated batch buffer, and the document each token belongs to."""
    # One NUL before and eight after: token runs always open and close inside the array, and
    # an 8-byte load at any token byte stays inside it.
    raw = np.frombuffer(b"\x00" + buf + bytes(8), dtype=np.uint8)
    is_token = token_bytes(raw)
    edges = np.flatnonzero(is_token[1:] != is_token[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]          # runs open and close alternately
    separators = np.flatnonzero(raw[1:len(buf) + 1] == 0) + 1
    per_doc = np.diff(np.searchsorted(starts, separators), prepend=0, append=len(starts))
    doc = np.repeat(np.arange(len(per_doc)), per_doc)
    return hash_tokens(raw, starts, ends), doc


def hash_tokens(raw: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Token hashes; ``raw`` must have 8 readable bytes after the last token."""
    n = len(starts)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    lengths = ends - starts
    # An unaligned little-endian uint64 view: words[i] is the 8 bytes starting at byte i.
    words = np.ndarray((len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))
    ulen = lengths.astype(np.uint64)
    # First chunk of every token at once, the length folded in; the mask keeps only the
    # token's own bytes.
    shift = np.minimum(ulen, np.uint64(8))
    shift *= np.uint64(8)
    np.subtract(np.uint64(64), shift, out=shift)
    h = words[starts]
    h &= _ALL_ONES >> shift
    h ^= ulen * TOKEN_SEED
    mix64(h)
    # Further chunks only for the few tokens longer than 8 bytes.
    idx = np.flatnonzero((lengths > 8) & (lengths <= LONG_TOKEN))
    offset = 8
    while len(idx):
        remaining = lengths[idx] - offset
        keep_bits = np.minimum(remaining, 8).astype(np.uint64) * np.uint64(8)
        chunk = words[starts[idx] + offset] & (_ALL_ONES >> (np.uint64(64) - keep_bits))
        h[idx] = mix64(h[idx] ^ chunk)
        offset += 8
        idx = idx[remaining > 8]
    for i in np.flatnonzero(lengths > LONG_TOKEN):
        data = raw[starts[i]:ends[i]].tobytes()
        h[i] = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return h


def shingle_hashes(token_hash: np.ndarray, doc: np.ndarray, n_docs: int, size: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every ``size``-token shingle that stays inside one document, with its
    document; a document shorter than ``size`` tokens gives one padded shingle, an empty one
    the EMPTY_SHINGLE."""
    if not 1 <= size <= MAX_SHINGLE:
        raise ValueError(f"shingle size must be between 1 and {MAX_SHINGLE}, not {size}")
    n_tok = len(token_hash)
    counts = np.bincount(doc, minlength=n_docs) if n_tok else np.zeros(n_docs, dtype=np.int64)
    out_h, out_doc = [], []
    if n_tok >= size:
        n_sh = n_tok - size + 1
        inside = doc[:n_sh] == doc[size - 1:]
        acc = token_hash[:n_sh] * SHINGLE_MUL[0]
        for i in range(1, size):
            acc += token_hash[i:i + n_sh] * SHINGLE_MUL[i]
        out_h.append(mix64(acc[inside]))
        out_doc.append(doc[:n_sh][inside])
    short = np.flatnonzero((counts > 0) & (counts < size))
    if len(short):
        first = (np.cumsum(counts) - counts)[short]
        acc = np.zeros(len(short), dtype=np.uint64)
        for i in range(size):
            present = i < counts[short]
            part = np.where(present, token_hash[np.minimum(first + i, n_tok - 1)], PAD_TOKEN)
            acc += part * SHINGLE_MUL[i]
        out_h.append(mix64(acc))
        out_doc.append(short)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        out_h.append(np.full(len(empty), EMPTY_SHINGLE, dtype=np.uint64))
        out_doc.append(empty)
    if not out_h:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_h), np.concatenate(out_doc).astype(np.int64)
